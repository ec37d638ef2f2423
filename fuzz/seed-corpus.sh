#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the golden vectors in shared/vectors (found beside or above
# the repository): hessian2 streams for hessian2_roundtrip, dubbo frames (each alone, and all
# Java frames back to back, as on a pipelined connection) for dubbo_frames, response bodies
# for reply_to_guest. Files are named by
# content hash, as libFuzzer names its own corpus entries, so reruns add nothing twice.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$here"
while [ ! -d "$dir/shared/vectors" ]; do
  [ "$dir" = / ] && { echo "shared/vectors not found above $here" >&2; exit 1; }
  dir="$(dirname "$dir")"
done
vectors="$dir/shared/vectors"

seed() { # seed TARGET FILE...
  mkdir -p "$here/corpus/$1"
  local target="$1" f; shift
  for f in "$@"; do
    cp "$f" "$here/corpus/$target/$(sha1sum < "$f" | cut -c1-40)"
  done
}

mapfile -t hessian < <(find "$vectors/hessian2" -name '*.bin' | sort)
mapfile -t frames < <(find "$vectors/dubbo" -name '*.bin' | sort)
seed hessian2_roundtrip "${hessian[@]}"
seed dubbo_frames "${frames[@]}"
# reply_to_guest takes a response body: the bodies of the response frames (flag byte without
# the request and event bits), and every hessian2 stream after the int 1 (0x91, "a value").
tmp="$(mktemp -d)"
for f in "${frames[@]}"; do
  flag=$(od -An -tu1 -j2 -N1 "$f" | tr -d ' ')
  if [ $((flag & 0xa0)) -eq 0 ]; then
    tail -c +17 "$f" > "$tmp/body"
    seed reply_to_guest "$tmp/body"
  fi
done
for f in "${hessian[@]}"; do
  { printf '\x91'; cat "$f"; } > "$tmp/body"
  seed reply_to_guest "$tmp/body"
done
rm -rf "$tmp"
pipelined="$(mktemp)"
cat "$vectors"/dubbo/java-dubbo-2.7.23/*.bin > "$pipelined"
seed dubbo_frames "$pipelined"
rm -f "$pipelined"
echo "corpus/hessian2_roundtrip: $(ls "$here/corpus/hessian2_roundtrip" | wc -l) files"
echo "corpus/dubbo_frames: $(ls "$here/corpus/dubbo_frames" | wc -l) files"
echo "corpus/reply_to_guest: $(ls "$here/corpus/reply_to_guest" | wc -l) files"
