#!/usr/bin/env bash
# The seed fine-tune's paired comparison: the base model against this preset's seed adapter,
# both sampled on the same prompts with the same seeds (`archloop compare`: exact McNemar on
# first-attempt validity, after repair and novel-valid; Wilson intervals per side). The seed
# adapter is the machine's cached one, trained first if missing (`archloop seed-adapter`);
# the comparison is kept beside it, so runs that reuse it show it.
# Needs `bin/archloop services up` and the demo's seed corpus (`npm run demo` imports it).
#   bash bench/seed_compare.sh [samples=64] [batch=8] [from=lemur|self|both] [outdir=.archloop/bench/seed-compare]
set -euo pipefail
cd "$(dirname "$0")/.."
SAMPLES=${1:-64}
BATCH=${2:-8}
FROM=${3:-lemur}
OUT=${4:-.archloop/bench/seed-compare}
mkdir -p "$OUT"
echo "== $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); $SAMPLES paired samples, $BATCH per request, seed adapter from $FROM" >&2
config="$OUT/config-$FROM.json"
echo "{\"lora\": {\"seedFrom\": \"$FROM\"}}" > "$config"
t0=$(date +%s)
bin/archloop seed-adapter --preset demo --config "$config"
echo "seed adapter: $(( $(date +%s) - t0 )) s" >&2
t0=$(date +%s)
bin/archloop compare base seed --preset demo --config "$config" --samples "$SAMPLES" --batch "$BATCH" --out "$OUT/compare-$FROM-n$SAMPLES.json"
echo "compare: $(( $(date +%s) - t0 )) s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
