#!/usr/bin/env bash
# Builds hello_js.wasm, the JavaScript example guest, with componentize-js:
#
#     guest-examples/hello-js/build.sh
#
# Needs only node and npm: componentize-js is a pinned dev dependency (package.json,
# package-lock.json), installed into node_modules here by `npm ci` when node_modules is missing
# or older than package-lock.json.
#
# componentize-js needs every WIT package the world uses. They are linked, not copied, into
# a temporary WIT folder: `wasi:*` 0.2.12 from the wasmtime-wasi-http crate the host builds
# with (in Cargo's registry after `cargo fetch` in the repository root; WASI_WIT_DEPS
# overrides the folder), `dubbo:host` and `org-apache-dubbo:demo` from the repository's `wit/`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
wasi_http_version=0.2.12

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool not found; this example needs Node.js 20 or newer with npm" >&2
        exit 1
    fi
done
# Also after package-lock.json changed (npm ci writes node_modules/.package-lock.json).
lock=$here/package-lock.json
if [[ ! -d $here/node_modules || $lock -nt $here/node_modules/.package-lock.json ]]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi
componentize_js=$here/node_modules/.bin/componentize-js
if [[ ! -x $componentize_js ]]; then
    echo "error: $componentize_js is missing; remove $here/node_modules and run again" >&2
    exit 1
fi

# The newest wasmtime-wasi-http in Cargo's registry that ships wasi:http@0.2.12.
deps=${WASI_WIT_DEPS:-}
if [[ -z $deps ]]; then
    shopt -s nullglob
    candidates=("${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasmtime-wasi-http-*/wit/deps)
    shopt -u nullglob
    for dir in $(printf '%s\n' "${candidates[@]}" | sort -V -r); do
        if grep -qs "^package wasi:http@$wasi_http_version;" "$dir/http.wit"; then
            deps=$dir
            break
        fi
    done
fi
if [[ -z $deps || ! -f $deps/http.wit ]]; then
    echo "error: no wasi:http@$wasi_http_version WIT found in Cargo's registry" \
        "(wasmtime-wasi-http-*/wit/deps); run \`cargo fetch\` in $repo first" >&2
    exit 1
fi

wit=$(mktemp -d)
trap 'rm -rf "$wit"' EXIT
mkdir "$wit/deps"
ln -s "$here/wit/world.wit" "$wit/world.wit"
ln -s "$deps"/*.wit "$wit/deps/"
ln -s "$repo/wit/dubbo-host" "$wit/deps/dubbo-host"
ln -s "$repo/wit/demo" "$wit/deps/demo"

echo "wasi WIT: $deps"
# `-d http fetch-event`: no `fetch()` (the host denies outgoing requests anyway) and no
# `addEventListener('fetch')` (app.js exports `incomingHandler` itself); this drops the engine's
# `wasi:http/outgoing-handler@0.2.10` import. stdio (uncaught errors reach the host's stderr),
# random and clocks stay, as ordinary JavaScript expects them.
"$componentize_js" --wit "$wit" --world-name dubbo-examples:hello-js/hello-js \
    -d http fetch-event -o "$here/hello_js.wasm" "$here/app.js"
