#!/usr/bin/env bash
# The host's own side-by-side run: every row against ONE null provider (the shared
# loopback-limit's `serve`), in one run, so that ratios hold on a noisy 2-core machine.
#
#   floor        raw dubbo frames on loopback (loopback-limit), c=1 p50 and pipelined frames/s
#   job rows     HTTP -> guest -> typed Dubbo import -> reply, through wrk, for each guest
#                (rust = hello-http, py = hello-py, js = hello-js) and mode (fresh: a new
#                instance per request; reuse: instance-reuse = 100000), with the host's CPU,
#                page faults per request and RSS after the row
#   404          the host answering an unrouted path (hyper alone, no guest)
#   bench        `dubbo-wasm-host bench` native calls, c=1 and c=64 on one connection
#   node         the shared Node peers (node-bff.js, node-consumer-bench.js), when npm works
#
# usage: host/benches/side-by-side.sh [SECONDS]          (default 8 s a row)
# env:   HOST_BIN   host under test          (default target/release/dubbo-wasm-host)
#        BASE_BIN   a host built from an earlier commit: its fresh rows run next to each of
#                   HOST_BIN's, interleaved (it knows no instance-reuse)
#        GUESTS     guests to run            (default "rust py js")
#        MODES      modes of HOST_BIN        (default "fresh reuse")
#        CONC       wrk concurrencies        (default "1 16 64")
#        BIG_C      also run c=1024 with max-instances = 1024 and report RSS (default 1)
# Run from the repository root after `cargo build --release` and the guest builds.
set -u
D=${1:-8}
ROOT=$(pwd)
SHARED=${SHARED:-$ROOT/../shared}
LL_DIR=$SHARED/tools/loopback-limit
LL=/tmp/ll-target/release/loopback-limit
VEC=$SHARED/vectors/dubbo/java-dubbo-2.7.23
HOST=${HOST_BIN:-target/release/dubbo-wasm-host}
BASE=${BASE_BIN:-}
GUESTS=${GUESTS:-rust py js}
MODES=${MODES:-fresh reuse}
CONC=${CONC:-1 16 64}
BIG_C=${BIG_C:-1}
W=$(mktemp -d /tmp/dwh-sbs.XXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$W"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
wasm_of() {
  case $1 in
    rust) echo "$ROOT/guest-examples/target/wasm32-wasip2/release/hello_http.wasm" ;;
    py) echo "$ROOT/guest-examples/hello-py/hello_py.wasm" ;;
    js) echo "$ROOT/guest-examples/hello-js/hello_js.wasm" ;;
  esac
}

[ -x "$LL" ] || (cd "$LL_DIR" && CARGO_TARGET_DIR=/tmp/ll-target cargo build --release -q)
NP=$(port)
"$LL" "$VEC" serve "$NP" >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.5
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $D s a row"
echo "== floor (loopback-limit, raw frames)"
"$LL" "$VEC" 2>&1 | tail -4

# start_host BIN GUEST MODE MAX_INSTANCES -> sets HPID, HP
start_host() {
  local bin=$1 guest=$2 mode=$3 max=$4 extra=""
  [ "$mode" = reuse ] && extra="instance-reuse = 100000"
  HP=$(port)
  local ap; ap=$(port)
  cat >"$W/host.toml" <<TOML
[application]
name = "sbs"
[[reference]]
id = "demo"
interface = "org.apache.dubbo.demo.DemoService"
version = "1.0.0"
url = "dubbo://127.0.0.1:$NP"
wit = "org-apache-dubbo:demo/demo-service"
timeout = 3000
[[guest]]
name = "hello"
path = "$(wasm_of "$guest")"
trigger = "http"
route = "/hello"
references = ["demo"]
max-instances = $max
max-memory-mib = 128
$extra
[http]
listen = "127.0.0.1:$HP"
[admin]
listen = "127.0.0.1:$ap"
TOML
  RUST_LOG=warn "$bin" serve --config "$W/host.toml" >"$W/host.log" 2>&1 &
  HPID=$!
  PIDS+=($HPID)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HP/hello?name=w" >/dev/null && return 0; sleep 0.2; done
  echo "host did not come up:"; tail -5 "$W/host.log"
  return 1
}
stat_of() { awk '{print $10+$12, $14+$15}' "/proc/$1/stat"; }   # faults, cpu ticks
rss_of() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
# row LABEL C: one wrk run against the running host
row() {
  local label=$1 c=$2 t=1 out a b rps p50 p99 non2 reqs
  [ "$c" -gt 1 ] && t=2
  read -r fa ca < <(stat_of "$HPID")
  out=$(wrk -t$t -c"$c" -d"${D}s" --latency "http://127.0.0.1:$HP/hello?name=world" 2>&1)
  read -r fb cb < <(stat_of "$HPID")
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  p50=$(echo "$out" | awk '/ 50%/{print $2}')
  p99=$(echo "$out" | awk '/ 99%/{print $2}')
  non2=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  python3 - "$label" "$c" "$rps" "$p50" "$p99" "${non2:-0}" "$fa" "$fb" "$ca" "$cb" "${reqs:-0}" "$D" "$(rss_of "$HPID")" <<'PY'
import sys
label, c, rps, p50, p99, non2, fa, fb, ca, cb, reqs, d, rss = sys.argv[1:]
reqs = max(int(reqs), 1)
cpu = (int(cb) - int(ca)) / 100 / float(d) * 100
print(f"{label:<24} c={c:<5} req/s={rps:<10} p50={p50:<9} p99={p99:<9} non2xx={non2:<4} "
      f"cpu={cpu:4.0f}% faults/req={(int(fb)-int(fa))/reqs:7.1f} rss={int(rss)/1024:6.1f}MB")
PY
}

echo "== the job: HTTP -> guest -> say-hello -> dubbo -> reply (wrk)"
for guest in $GUESTS; do
  if [ ! -f "$(wasm_of "$guest")" ]; then echo "$guest: $(wasm_of "$guest") not built, skipped"; continue; fi
  for c in $CONC; do
    for mode in $MODES; do
      if [ -n "$BASE" ] && [ "$mode" = fresh ]; then
        start_host "$BASE" "$guest" fresh 256 || continue
        wrk -t1 -c4 -d1s "http://127.0.0.1:$HP/hello?name=w" >/dev/null 2>&1
        row "base $guest fresh" "$c"
        kill "$HPID"; wait "$HPID" 2>/dev/null
      fi
      start_host "$HOST" "$guest" "$mode" 256 || continue
      wrk -t1 -c4 -d1s "http://127.0.0.1:$HP/hello?name=w" >/dev/null 2>&1
      row "host $guest $mode" "$c"
      kill "$HPID"; wait "$HPID" 2>/dev/null
    done
  done
done

start_host "$HOST" rust fresh 1024
echo "== host idle RSS (rust guest, after one request): $(( $(rss_of "$HPID") / 1024 )) MB"
out=$(wrk -t2 -c64 -d"${D}s" "http://127.0.0.1:$HP/nothing-here" 2>&1)
echo "host 404 (no guest)       c=64    req/s=$(echo "$out" | awk '/Requests\/sec/{print $2}')"
if [ "$BIG_C" = 1 ]; then
  for guest in $GUESTS; do
    [ -f "$(wasm_of "$guest")" ] || continue
    kill "$HPID"; wait "$HPID" 2>/dev/null
    start_host "$HOST" "$guest" fresh 1024 || continue
    idle=$(rss_of "$HPID")
    row "host $guest fresh" 1024
    echo "   $guest under c=1024: RSS $(( $(rss_of "$HPID") / 1024 )) MB after, idle $(( idle / 1024 )) MB"
  done
fi
kill "$HPID" 2>/dev/null

echo "== dubbo-wasm-host bench (native calls through the reference, one connection)"
for c in 1 64; do
  "$HOST" bench --url "dubbo://127.0.0.1:$NP" --interface org.apache.dubbo.demo.DemoService \
    --version 1.0.0 -c $c -d "${D}s" --json sayHello '["world"]' 2>/dev/null | tail -1 | sed "s/^/bench c=$c: /"
done

PEERS=$SHARED/tools/peers
if command -v node >/dev/null; then
  if [ ! -d "$PEERS/node_modules" ]; then
    mkdir -p /tmp/dwh-peers && cp "$PEERS"/*.js "$PEERS"/package*.json /tmp/dwh-peers/ 2>/dev/null
    PEERS=/tmp/dwh-peers
    [ -d "$PEERS/node_modules" ] || (cd "$PEERS" && npm ci --silent >/dev/null 2>&1) || echo "npm ci failed in $PEERS"
  fi
  BP=$(port)
  node "$PEERS/node-bff.js" --listen "$BP" --direct "127.0.0.1:$NP" >"$W/bff.log" 2>&1 &
  BPID=$!
  PIDS+=($BPID)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$BP/hello?name=w" >/dev/null && break; sleep 0.2; done
  HPID=$BPID HP=$BP
  for c in 1 64; do row "node-bff" $c; done
  for c in 1 64; do
    echo "node consumer c=$c: $(node "$PEERS/node-consumer-bench.js" --direct "127.0.0.1:$NP" -c $c -d "$D" --warmup 2 --json 2>/dev/null | tail -1)"
  done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
