#!/usr/bin/env bash
# Builds and launches Hotpatch Studio with the demo model open (or the model given):
#   scripts/studio.sh [MODEL.gguf]
# Installs what is missing first (scripts/setup.sh). Needs a display: a desktop session, or
#   xvfb-run -a -s "-screen 0 1440x900x24" scripts/studio.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hotpatch-studio/target}"

scripts/setup.sh

# The app a user launches is an optimized (release) build: a debug build runs the engine ~10×
# slower (a safety scan of a 270M model took 31 s in it, 2.2 s optimized). The first build takes
# longer (~12 min on 2 cores); scripts/test.sh keeps its fast debug build.
echo "studio: building the UI (vite) and the app (tauri build --no-bundle, optimized)"
npm run --silent build:ui
npx tauri build --no-bundle --ci

# The demo is the real SmolLM2-135M-Instruct (the Run screen answers); hotpatch-demo.gguf, every
# ggml type with random weights, is beside it.
model="${1:-${HOTPATCH_MODEL:-$root/demo/SmolLM2-135M-Instruct.Q4_1.gguf}}"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "studio: no display (DISPLAY/WAYLAND_DISPLAY unset). Run it under Xvfb:" >&2
  echo "  xvfb-run -a -s \"-screen 0 1440x900x24\" scripts/studio.sh" >&2
  exit 1
fi
echo "studio: launching $CARGO_TARGET_DIR/release/hotpatch-studio $model"
exec "$CARGO_TARGET_DIR/release/hotpatch-studio" "$model"
