#!/usr/bin/env bash
# GPU benchmark for the sandbox runner (issues 3 and 12), sized to finish within 10 minutes
# on a lent GPU machine. Run after scripts/setup.sh (bubblewrap, .venv); results go to $OUT
# (the device tool's folder; default bench/gpu_sandbox.out.d):
#   OUT=/some/dir bash bench/gpu_sandbox.sh 2>&1 | tee "$OUT/gpu_sandbox.log"
# 0. the warm path (issue 12), first: six valid corpus nets and the reference CNN through
#    `archloop validate` and then `archloop train` (one CLI call each: one pool, one zygote,
#    the candidates one after another in fresh nested sandboxes), one epoch on a synthetic
#    CIFAR-10-shaped 50k/10k set, fp32 then bf16 + channels_last; rows in $OUT/*.jsonl,
#    per-candidate times in $OUT/warm_summary.json;
# 1. tensor-resident iterable vs DataLoader on CUDA, synthetic CIFAR-shaped 50k images;
# 2. one sandboxed epoch (one-shot runner: a zygote boot per job) of the reference CNN,
#    median of 3 runs; fp32, then bf16 + channels_last;
# 3. the same unsandboxed, for the sandbox overhead on GPU. Target: <= 3 s per epoch.
# Steps 1–3 run only while the 10-minute budget lasts (each under `timeout`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${ARCHLOOP_PYTHON:-.venv/bin/python}
OUT=${OUT:-bench/gpu_sandbox.out.d}
BUDGET_S=${BUDGET_S:-570}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu TRAIN_SIZE=1024 TEST_SIZE=256 WARM_ONLY=1: a CPU smoke test of step 0
TRAIN_SIZE=${TRAIN_SIZE:-50000}
TEST_SIZE=${TEST_SIZE:-10000}
mkdir -p "$OUT"
export ARCHLOOP_HOME=${ARCHLOOP_HOME:-$(mktemp -d /tmp/archloop-gpu-home-XXXX)}
export ARCHLOOP_DATASETS=${ARCHLOOP_DATASETS:-$ARCHLOOP_HOME/datasets}
mkdir -p "$ARCHLOOP_DATASETS"
chmod 755 "$ARCHLOOP_HOME" "$ARCHLOOP_DATASETS"
left() { echo $((BUDGET_S - SECONDS)); }
step() { # step <seconds wanted> <command…>: runs it under the time left, or says why not
  local want=$1; shift
  if (($(left) < want)); then echo "(skipped: $(left) s left of the budget, $want wanted)"; return 0; fi
  timeout --kill-after=10 "$(left)" "$@" || echo "(exit $?)"
}
echo "== $(date -u +%FT%TZ) $(hostname) $(nproc) cores; $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || echo "no nvidia-smi")"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())'
command -v bwrap >/dev/null || { echo "bubblewrap is missing: the sandbox cannot run (scripts/setup.sh installs it)"; exit 1; }
ls -l /dev/nvidia* || true

echo "== 0. warm path (issue 12): validate and one-epoch train through archloop validate|train"
programs="$(realpath "$OUT")/warm-programs"
mkdir -p "$programs"
(cd python && "../$PY" -c "
import sys
from tests.runner.corpus import VALID
for name in ('simple', 'residual_add', 'concat', 'depthwise_separable', 'grouped_conv', 'attention'):
    open(sys.argv[1] + '/' + name + '.py', 'w').write(VALID[name])
" "$programs")
cp bench/sandbox_reference_net.py "$programs/zz_reference_cnn.py"
files=("$programs"/*.py)
for variant in fp32 bf16; do
  extra=$([ "$variant" = bf16 ] && echo '"bf16": true, "channelsLast": true,' || true)
  cat > "$OUT/warm-$variant.json" <<JSON
{"dataset": {"syntheticTrainSize": $TRAIN_SIZE, "syntheticTestSize": $TEST_SIZE},
 "training": {"device": "$DEVICE", $extra "batchSize": 64, "threads": 4, "timeLimitS": 120, "maxTrainImages": 0}}
JSON
done
# The 50k/10k set is generated once (trusted side, CPU): timed apart from the jobs.
start=$SECONDS
PYTHONPATH=python "$PY" -m archloop.runner dataset-spec --dataset synthetic --synthetic-train-size "$TRAIN_SIZE" \
  --synthetic-test-size "$TEST_SIZE" >/dev/null
echo "synthetic $TRAIN_SIZE/$TEST_SIZE generated in $((SECONDS - start)) s"
warm() { # warm <name> <kind> <config> <seconds wanted>: one CLI call for all files, wall time in $OUT/<name>.wall
  if (($(left) < $4)); then echo "($1 skipped: $(left) s left of the budget)"; return 0; fi
  local started=$SECONDS
  timeout --kill-after=10 "$(left)" bin/archloop "$2" "${files[@]}" --dataset synthetic --config "$3" --json \
    > "$OUT/$1.jsonl" 2> "$OUT/$1.err" || echo "($1: exit $?)"
  echo "$((SECONDS - started))" > "$OUT/$1.wall"
  echo "$1: ${#files[@]} files in $((SECONDS - started)) s"
}
warm validate validate "$OUT/warm-fp32.json" 60
warm train-fp32 train "$OUT/warm-fp32.json" 120
# The sandbox's GPU view is new (docs/sandbox.md): if no job reached CUDA, once more with all of /sys.
if [ "$DEVICE" = cuda ] && ! grep -q '"device":"cuda"' "$OUT/train-fp32.jsonl" 2>/dev/null; then
  echo "no training job ran on CUDA; again with ARCHLOOP_SANDBOX_RO_BINDS=/sys"
  ARCHLOOP_SANDBOX_RO_BINDS=/sys warm train-fp32-sys train "$OUT/warm-fp32.json" 120
fi
warm train-bf16 train "$OUT/warm-bf16.json" 120
"$PY" - "$OUT" <<'SUMMARY' | tee "$OUT/warm_summary.json"
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {}
for rows_file in sorted(out.glob("*.jsonl")):
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip().startswith("{")]
    wall = out / (rows_file.stem + ".wall")
    per = {}
    for row in rows:
        timings = (row.get("timings") or {})
        t = timings.get("validate") or timings.get("train") or {}
        per[Path(row["file"]).stem] = {"status": row.get("status"), "failure": row.get("failureClass"),
                                       "device": (row.get("training") or {}).get("device"), "accuracy": row.get("accuracy"),
                                       **{k: t.get(k) for k in ("totalS", "sandboxS", "sandboxWaitS", "zygoteStartupS",
                                                                "startupS", "validateS", "trainS", "imagesPerS")}}
    # All files go to the pool at once, so totalS includes the queue: the per-job figures
    # are sandboxS (one candidate in its sandbox) and, for train, trainS (the epoch).
    median = lambda key: statistics.median(vals) if (vals := [v[key] for v in per.values() if v[key] is not None]) else None  # noqa: E731
    summary[rows_file.stem] = {"files": len(rows), "wallS": int(wall.read_text()) if wall.exists() else None,
                               "zygoteStartupS": median("zygoteStartupS"), "medianSandboxS": median("sandboxS"),
                               "medianTrainS": median("trainS"), "medianImagesPerS": median("imagesPerS"),
                               "perFile": per}
print(json.dumps(summary, indent=1))
SUMMARY

[ -z "${WARM_ONLY:-}" ] || exit 0
echo "== 1. iterable vs DataLoader (cuda)"
step 120 "$PY" bench/sandbox_dataloader.py --device cuda --images 50000 --batch 16 64 256 --workers 0 4 8 --threads 4 --repeats 3
for batch in 64 16; do
  echo "== 2. sandboxed epoch, batch $batch, fp32"
  step 60 "$PY" bench/sandbox_train_epoch.py --device cuda --batch "$batch" --runs 3 --threads 4
  echo "== 2b. sandboxed epoch, batch $batch, bf16 + channels_last"
  step 60 "$PY" bench/sandbox_train_epoch.py --device cuda --batch "$batch" --runs 3 --threads 4 --bf16 --channels-last
  echo "== 3. unsandboxed epoch, batch $batch, fp32"
  step 60 "$PY" bench/sandbox_train_epoch.py --device cuda --batch "$batch" --runs 3 --threads 4 --unsafe-no-sandbox
done
echo "== done in $SECONDS s"
