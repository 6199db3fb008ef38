#!/usr/bin/env bash
# Refreshes docs/screenshots/*.png: builds the app and photographs every screen of the real
# app under Xvfb at 1440×900 (tests/e2e/screenshots.mjs), with the demo model open.
#   scripts/screenshots.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$root/node_modules/.bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hotpatch-studio/target}"

scripts/setup.sh --test
npm run --silent build:ui
npx tauri build --debug --no-bundle --ci
HOTPATCH_APP="$CARGO_TARGET_DIR/debug/hotpatch-studio" \
  xvfb-run -a -s "-screen 0 1440x900x24" node tests/e2e/screenshots.mjs
