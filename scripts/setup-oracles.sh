#!/usr/bin/env bash
# Installs the test oracles, idempotently:
#   .venv/                      Python with gguf-py (llama.cpp's own GGUF package) and numpy
#   tests/oracle/node_modules/  node-llama-cpp with the prebuilt linux-x64 llama.cpp/ggml libraries
# Usage: scripts/setup-oracles.sh   (prints what it does; quiet when everything is in place)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

req=tests/oracle/requirements.txt
stamp=.venv/.requirements.sha
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-oracles: creating .venv with $(tr '\n' ' ' < <(grep -v '^#' "$req"))"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

lock=tests/oracle/package.json
nstamp=tests/oracle/node_modules/.package.sha
nwant="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ ! -f tests/oracle/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so ] \
   || [ "$(cat "$nstamp" 2>/dev/null)" != "$nwant" ]; then
  echo "setup-oracles: installing node-llama-cpp (prebuilt llama.cpp, linux-x64 only) into tests/oracle"
  (cd tests/oracle && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm install --omit=optional --no-audit --no-fund --loglevel=error)
  echo "$nwant" > "$nstamp"
fi
