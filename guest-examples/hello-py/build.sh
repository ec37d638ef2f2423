#!/usr/bin/env bash
# Builds hello_py.wasm, the Python example guest, with componentize-py:
#
#     pip install componentize-py==0.25.1
#     guest-examples/hello-py/build.sh
#
# componentize-py needs every WIT package the world uses. They are linked, not copied, into
# a temporary WIT folder: `wasi:*` 0.2.12 from the wasmtime-wasi-http crate the host builds
# with (in Cargo's registry after `cargo fetch` in the repository root; WASI_WIT_DEPS
# overrides the folder), `dubbo:host` and `org-apache-dubbo:demo` from the repository's `wit/`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
componentize_py=${COMPONENTIZE_PY:-componentize-py}
componentize_py_version=0.25.1
wasi_http_version=0.2.12

if ! command -v "$componentize_py" >/dev/null; then
    echo "error: $componentize_py not found;" \
        "run: pip install componentize-py==$componentize_py_version" >&2
    exit 1
fi
found=$("$componentize_py" --version | awk '{print $2}')
if [[ $found != "$componentize_py_version" ]]; then
    echo "warning: componentize-py $found; this example is tested with $componentize_py_version" >&2
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
"$componentize_py" -d "$wit" -w dubbo-examples:hello-py/hello-py \
    componentize app -p "$here" -o "$here/hello_py.wasm"
