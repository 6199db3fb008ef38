#!/usr/bin/env bash
# Proxy benchmark: added latency (p50/p99) and max requests/s of `hotpatch serve` on loopback,
# against going direct to the same fast upstream and against LiteLLM's proxy, in one run.
#
#   scripts/bench/proxy.sh [DURATION_SECONDS]      (default 10)
#
# - upstream: crates/proxy/examples/fast_upstream.rs (fixed chat completion, no model);
# - hotpatch: `hotpatch serve` (release) with 4 rules (system prompt, default parameter,
#   stop sequence, a redact filter that scans every answer);
# - LiteLLM: `litellm --config` (PyPI litellm[proxy], installed into $LITELLM_VENV, default
#   /work/targets/litellm-venv, never the project .venv) routing model "demo" to the upstream;
# - load: wrk (apt), POST /v1/chat/completions. Latency: 1 connection, 1 thread (each
#   request alone: what a user adds per call). Throughput: 64 connections, 2 threads.
# Prints a markdown table (also written to $OUT, default target/bench/proxy.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
LITELLM_VENV=${LITELLM_VENV:-/work/targets/litellm-venv}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/bench/proxy.md}
UP=18081 HP=18082 LL=18083
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

command -v wrk >/dev/null || apt-get install -y -o DPkg::Lock::Timeout=600 wrk >/dev/null
if [ ! -x "$LITELLM_VENV/bin/litellm" ]; then
  python3 -m venv "$LITELLM_VENV"
  "$LITELLM_VENV/bin/pip" install -q 'litellm[proxy]'
fi
cargo build --release -q -p hotpatch-proxy --example fast_upstream
cargo build --release -q -p hotpatch-cli --bin hotpatch

wait_http() { # URL, seconds
  for _ in $(seq 1 "$(( $2 * 10 ))"); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2; return 1
}

"$TARGET/release/examples/fast_upstream" $UP > "$WORK/up.log" 2>&1 & PIDS+=($!)
cat > "$WORK/config.json" <<'EOF'
{"version": 1, "server": {"rules": [
  {"id": "sys", "action": {"type": "system_prompt", "mode": "prepend", "text": "Answer briefly."}},
  {"id": "temp", "action": {"type": "default_parameter", "name": "temperature", "value": 0.2}},
  {"id": "stop", "action": {"type": "stop_sequences", "sequences": ["###"]}},
  {"id": "key", "action": {"type": "filter_response", "pattern": "sk-[A-Za-z0-9]{20}", "action": "redact"}}
]}}
EOF
"$TARGET/release/hotpatch" serve --upstream "http://127.0.0.1:$UP" --port $HP --config "$WORK/config.json" > /dev/null 2>&1 & PIDS+=($!)
cat > "$WORK/litellm.yaml" <<EOF
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      api_base: http://127.0.0.1:$UP/v1
      api_key: none
litellm_settings:
  set_verbose: false
  telemetry: false
general_settings:
  # Loopback benchmark, no key: LiteLLM refuses to start keyless without this.
  dangerously_permit_weak_or_unset_master_key: true
EOF
# exec: the recorded PID is LiteLLM's own, so the cleanup trap stops it.
(cd "$WORK" && exec env LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR \
  "$LITELLM_VENV/bin/litellm" --config litellm.yaml --port $LL --num_workers 1 > "$WORK/litellm.log" 2>&1) & PIDS+=($!)
wait_http "http://127.0.0.1:$UP/" 30
wait_http "http://127.0.0.1:$HP/" 30
wait_http "http://127.0.0.1:$LL/health/liveliness" 900  # slow imports on a loaded machine
LITELLM_VERSION=$("$LITELLM_VENV/bin/pip" show litellm | awk '/^Version/{print $2}')

cat > "$WORK/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"demo","messages":[{"role":"user","content":"Say hello."}]}'
EOF

# Sanity: every target answers the request with 200 before being measured.
for port in $UP $HP $LL; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -d '{"model":"demo","messages":[{"role":"user","content":"Say hello."}]}' "http://127.0.0.1:$port/v1/chat/completions")
  [ "$code" = 200 ] || { echo "port $port answered $code" >&2; cat "$WORK/litellm.log" >&2; exit 1; }
done

to_ms() { # wrk duration (e.g. 312.00us, 1.20ms, 2.00s) -> ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
run() { # name port conns threads -> "p50 p99 rps"
  local out
  out=$(wrk -t"$4" -c"$3" -d"${DUR}s" --latency -s "$WORK/post.lua" "http://127.0.0.1:$2/v1/chat/completions")
  local errs
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/')
  [ -z "$errs" ] || echo "$1: $errs" >&2
  local p50 p99 rps
  p50=$(echo "$out" | awk '$1=="50%"{print $2}')
  p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  rps=$(echo "$out" | awk '/^Requests\/sec/{print $2}')
  echo "$(to_ms "$p50") $(to_ms "$p99") $rps"
}

declare -A LAT THR
for t in direct:$UP hotpatch:$HP litellm:$LL; do
  name=${t%%:*} port=${t##*:}
  LAT[$name]=$(run "$name" "$port" 1 1)
  THR[$name]=$(run "$name" "$port" 64 2)
done
read -r d50 d99 _ <<< "${LAT[direct]}"
{
  echo "| target | p50 ms (1 conn) | p99 ms (1 conn) | added p50 ms | added p99 ms | req/s (64 conns) |"
  echo "|---|---|---|---|---|---|"
  for name in direct hotpatch litellm; do
    read -r p50 p99 _ <<< "${LAT[$name]}"
    read -r _ _ rps <<< "${THR[$name]}"
    a50=$(awk -v a="$p50" -v b="$d50" 'BEGIN{printf "%.3f", a-b}')
    a99=$(awk -v a="$p99" -v b="$d99" 'BEGIN{printf "%.3f", a-b}')
    [ "$name" = direct ] && a50=— && a99=—
    label=$name
    [ "$name" = litellm ] && label="litellm $LITELLM_VERSION"
    [ "$name" = hotpatch ] && label="hotpatch serve (4 rules)"
    echo "| $label | $p50 | $p99 | $a50 | $a99 | $rps |"
  done
  echo
  echo "wrk ${DUR}s per cell; $(nproc) cores; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
