#!/usr/bin/env bash
# Issue 10's seed fine-tune comparison: the base model against the demo's seed adapter, each
# sampled n times on the same design prompt with the same sampling seeds (`archloop preflight`,
# the demo preset: first attempt, then one repair), summarised with Wilson 95 % intervals by
# bench/seed_compare.ts. The seed adapter is the machine's cached one: `archloop seed-adapter
# --preset demo` trains it first or finds it. Resumable: a side whose JSON exists is kept.
# Needs `bin/archloop services up` and the demo's seed corpus (`npm run demo` imports it).
#   bash bench/seed_compare.sh [samples=32] [batch=8] [outdir=.archloop/bench/seed-compare]
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${1:-32}
BATCH=${2:-8}
OUT=${3:-.archloop/bench/seed-compare}
mkdir -p "$OUT"
echo "== $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); $SAMPLES samples per side, $BATCH per request" >&2

adapter=$(bin/archloop seed-adapter --preset demo | sed -n 's/.*: \(\/.*\)$/\1/p')
[[ -d "$adapter" ]] || { echo "no seed adapter directory in the output of archloop seed-adapter" >&2; exit 1; }

side() { # name, extra preflight arguments
  local name=$1; shift
  if [[ -s "$OUT/$name.json" ]]; then echo "$name: kept $OUT/$name.json" >&2; return; fi
  local t0; t0=$(date +%s)
  bin/archloop preflight --preset demo --samples "$SAMPLES" --batch "$BATCH" --json --save "$OUT/$name" "$@" > "$OUT/$name.json.tmp"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
  echo "$name: $(( $(date +%s) - t0 )) s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
}
side base
side seed-adapter --adapter "$adapter"
node --import tsx bench/seed_compare.ts "$OUT/base.json" "$OUT/seed-adapter.json"
