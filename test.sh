#!/usr/bin/env bash
# The test suite, as CI runs it (.ci/run calls exactly this): installs what the tests need
# (wasm32-wasip2, ZooKeeper, componentize-py; componentize-js comes from npm in hello-js's
# build.sh, which needs node and npm), builds the example guests and the workspace once (debug),
# then runs every test.
set -euo pipefail
cd "$(dirname "$0")"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
rustup target add wasm32-wasip2
if ! dpkg -s zookeeper >/dev/null 2>&1; then
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y zookeeper
fi
python3 -m pip install --quiet componentize-py==0.25.1

# The second version of hello-http (bodies start with `v2: `) for the hot-swap tests; the
# plain build below then rebuilds version 1 (the features are part of cargo's fingerprint).
(cd guest-examples && cargo build --release --locked --target wasm32-wasip2 -p hello-http --features v2)
cp guest-examples/target/wasm32-wasip2/release/hello_http.wasm guest-examples/target/wasm32-wasip2/release/hello_http_v2.wasm
(cd guest-examples && cargo build --release --locked --target wasm32-wasip2)
if grep -q 'v2: ' guest-examples/target/wasm32-wasip2/release/hello_http.wasm; then
  echo "hello_http.wasm is still version 2 after the plain build" >&2
  exit 1
fi
cargo build --workspace --locked
# After the host build: it reads wasi:http's WIT from the wasmtime-wasi-http crate's sources.
guest-examples/hello-py/build.sh
# Needs node and npm only: it installs its pinned componentize-js with `npm ci` (once, into
# guest-examples/hello-js/node_modules).
guest-examples/hello-js/build.sh
cargo test --workspace --locked
