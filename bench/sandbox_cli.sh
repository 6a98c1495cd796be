#!/usr/bin/env bash
# `archloop validate` wall time per file from a cold CLI start (issue 12): six valid corpus
# nets (python/tests/runner/corpus.py) in one call (the warm path: one pool, one zygote boot
# for all of them) against the same six as six single-file calls (each a cold start with
# its own zygote boot: the path before several files per call), interleaved per round so
# both see the same machine load. The 1-minute load is printed before and after each run.
#   bash bench/sandbox_cli.sh [rounds] [dataset]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
DATASET=${2:-fashion-mnist}
dir=$(mktemp -d /tmp/archloop-cli-bench-XXXX)
trap 'rm -rf "$dir"' EXIT
(cd python && ../.venv/bin/python -c "
from tests.runner.corpus import VALID
for name in ('simple', 'residual_add', 'concat', 'depthwise_separable', 'grouped_conv', 'attention'):
    open('$dir/' + name + '.py', 'w').write(VALID[name])
")
files=("$dir"/*.py)
load() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }
check() { # every line a valid row
  .venv/bin/python -c "import json,sys; rows=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; assert len(rows)==int(sys.argv[2]) and all(r.get('valid') for r in rows), rows" "$1" "$2"
}
echo "== $(date -u +%FT%TZ) $(hostname) $(nproc) cores; dataset $DATASET; ${#files[@]} files"
for ((round = 1; round <= ROUNDS; round++)); do
  before=$(load); t0=$(now)
  bin/archloop validate "${files[@]}" --dataset "$DATASET" --json > "$dir/warm.out"
  t1=$(now); after=$(load)
  check "$dir/warm.out" "${#files[@]}"
  warm=$(echo "($t1 - $t0) / ${#files[@]}" | bc -l)
  printf 'round %d warm: one call, %.2f s per file (load %s -> %s)\n' "$round" "$warm" "$before" "$after"
  before=$(load); t0=$(now)
  : > "$dir/cold.out"
  for file in "${files[@]}"; do
    bin/archloop validate "$file" --dataset "$DATASET" --json | .venv/bin/python -c "import json,sys; print(json.dumps(json.load(sys.stdin)))" >> "$dir/cold.out"
  done
  t1=$(now); after=$(load)
  check "$dir/cold.out" "${#files[@]}"
  cold=$(echo "($t1 - $t0) / ${#files[@]}" | bc -l)
  printf 'round %d cold: one call per file, %.2f s per file (load %s -> %s); warm/cold %.2f\n' "$round" "$cold" "$before" "$after" "$(echo "$warm / $cold" | bc -l)"
done
