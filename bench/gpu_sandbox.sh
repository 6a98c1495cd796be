#!/usr/bin/env bash
# GPU benchmark for the sandbox runner (issue 3). Run on a GPU worker after scripts/setup.sh:
#   bash bench/gpu_sandbox.sh 2>&1 | tee bench/gpu_sandbox.out
# 1. tensor-resident iterable vs DataLoader on CUDA, synthetic CIFAR-shaped 50k images;
# 2. one sandboxed epoch (bubblewrap, GPU device nodes bound) of the reference CNN on a
#    synthetic 50k/10k set, median of 5 runs; fp32, then bf16 + channels_last;
# 3. the same unsandboxed, for the sandbox overhead on GPU. Target: <= 3 s per epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${ARCHLOOP_PYTHON:-.venv/bin/python}
export ARCHLOOP_DATASETS=${ARCHLOOP_DATASETS:-$(mktemp -d /tmp/archloop-gpu-bench-XXXX)}
chmod 755 "$ARCHLOOP_DATASETS"
echo "== $(date -u +%FT%TZ) $(hostname) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
ls -l /dev/nvidia* || true
echo "== 1. iterable vs DataLoader (cuda)"
"$PY" bench/sandbox_dataloader.py --device cuda --images 50000 --batch 16 64 256 --workers 0 4 8 --threads 4 --repeats 3
for batch in 16 256; do
  echo "== 2. sandboxed epoch, batch $batch, fp32"
  "$PY" bench/sandbox_train_epoch.py --device cuda --batch "$batch" --runs 5 --threads 4
  echo "== 2b. sandboxed epoch, batch $batch, bf16 + channels_last"
  "$PY" bench/sandbox_train_epoch.py --device cuda --batch "$batch" --runs 5 --threads 4 --bf16 --channels-last
  echo "== 3. unsandboxed epoch, batch $batch, fp32"
  "$PY" bench/sandbox_train_epoch.py --device cuda --batch "$batch" --runs 3 --threads 4 --unsafe-no-sandbox
done
