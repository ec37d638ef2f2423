#!/usr/bin/env bash
# The test suite, as CI runs it (.ci/run calls exactly this): builds the example guests for
# wasm32-wasip2 and the workspace once (debug), then runs every test.
set -euo pipefail
cd "$(dirname "$0")"

rustup target add wasm32-wasip2
(cd guest-examples && cargo build --release --locked --target wasm32-wasip2)
cargo build --workspace --locked
cargo test --workspace --locked
