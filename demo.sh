#!/usr/bin/env bash
# The demo: builds the host, the test provider and the example guest, starts the provider on
# 127.0.0.1:20880 and the host on 127.0.0.1:8080, and calls the guest once. Ctrl-C stops both.
# PROFILE=debug ./demo.sh builds faster and runs slower.
set -euo pipefail
cd "$(dirname "$0")"
profile="${PROFILE:-release}"
flag=$([ "$profile" = release ] && echo --release || true)

rustup target add wasm32-wasip2
echo "==> building the host and the test provider ($profile; the first build takes several minutes)"
cargo build $flag --locked -p dubbo-wasm-host -p dubbo-wasm-host-tests
echo "==> building the example guest (wasm32-wasip2)"
(cd guest-examples && cargo build --release --locked --target wasm32-wasip2)

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"target/$profile/test-provider" --listen 127.0.0.1:20880 &
pids+=($!)
"target/$profile/dubbo-wasm-host" serve --config guest-examples/demo.toml &
pids+=($!)

url='http://127.0.0.1:8080/hello?name=world'
for _ in $(seq 1 100); do
  if curl -fsS "$url" -o /dev/null 2>/dev/null; then break; fi
  sleep 0.2
done
echo "==> curl '$url'"
curl -sS "$url"
echo
echo "==> the host is serving; try: curl 'http://127.0.0.1:8080/hello?name=you'   (Ctrl-C stops)"
echo "    guests and metrics: curl http://127.0.0.1:9090/admin/guests ; curl http://127.0.0.1:9090/metrics"
echo "    hot swap: rebuild the guest, or mv a new component over guest-examples/target/wasm32-wasip2/release/hello_http.wasm"
wait
