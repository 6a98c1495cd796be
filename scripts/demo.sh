#!/usr/bin/env bash
# The demo (README's first command): set-up, services, a small LEMUR seed corpus, a worker,
# the seed adapter (cached per machine), then a `demo` run (Fashion-MNIST, the embedded
# Qwen2.5-Coder-1.5B, 2 cycles) followed live, and a report.
# Extra arguments go to `archloop run` (e.g. --cycles 2, --config my.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

bin/archloop services up
# Short programs only: the demo fine-tunes at 2048 tokens, prompt included.
bin/archloop corpus import-lemur --limit "${ARCHLOOP_DEMO_SEED_LIMIT:-40}" --max-chars 3500
# The seed adapter (cycle 0's fine-tune): trained once per machine with its progress shown
# here (16 LoRA steps, about 30 min on 2 cores), found in the cache by every later demo.
bin/archloop seed-adapter --preset demo

state="${ARCHLOOP_HOME:-$PWD/.archloop}"
mkdir -p "$state/logs"
bin/archloop worker --queue all >>"$state/logs/demo-worker.log" 2>&1 &
worker=$!
trap 'kill -TERM "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
echo "worker pid $worker (log: $state/logs/demo-worker.log)"

run_id="demo-$(date -u +%Y%m%d-%H%M%S)"
started=$(date +%s)
bin/archloop run --preset demo --id "$run_id" --watch "$@" || true
echo "wall time: $(( $(date +%s) - started )) s"

out="$state/reports/$run_id"
bin/archloop report "$run_id" --out "$out"
echo "report: $out/index.html"
