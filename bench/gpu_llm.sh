#!/usr/bin/env bash
# LoRA benchmark for a GPU machine: a random-weight model of SmolLM2-135M's shape, LoRA
# steps/s at sequence length 1024 (batch 8, bf16 where supported). Needs the repo's Python environment (python/requirements.txt);
# no network, no model files. Output: bench/gpu_llm.out.json (commit it with the run's date).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${ARCHLOOP_PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || echo "no nvidia-smi" >&2
"$PY" bench/llm_gpu.py "$@" | tee bench/gpu_llm.out.json
