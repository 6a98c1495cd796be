#!/usr/bin/env bash
# The test command (README, CI): set-up, then real services in .archloop/test, then the
# TypeScript suite (node:test) and the Python suite (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export ARCHLOOP_HOME="$PWD/.archloop/test"
# Tests use the smallest embedded model: they check the machinery, not design quality.
export ARCHLOOP_LLM_MODEL="${ARCHLOOP_TEST_LLM_MODEL:-smollm2-135m-instruct}"
# Seed adapters trained by tests stay with the tests, not in the machine's cache.
export ARCHLOOP_SEED_CACHE="$ARCHLOOP_HOME/seed-adapters"
unset DATABASE_URL TEMPORAL_ADDRESS ARCHLOOP_LLM_URL
bin/archloop services up --only postgres,temporal,llm
trap 'bin/archloop services down >/dev/null 2>&1 || true' EXIT
eval "$(node -e '
  const s = require(process.env.ARCHLOOP_HOME + "/services.json");
  console.log(`export DATABASE_URL=${s.postgres.url} TEMPORAL_ADDRESS=${s.temporal.address} ARCHLOOP_LLM_URL=${s.llm.baseUrl}`);
')"

npx tsc --noEmit -p .
shopt -s globstar
node --import tsx --test --test-concurrency=1 test/**/*.test.ts
PYTHONPATH=python .venv/bin/python -m pytest python/tests -p no:cacheprovider
