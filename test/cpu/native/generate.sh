#!/bin/bash
# Rebuild the native reference generators and regenerate every vector file in
# test/cpu/vectors/.  Output is deterministic (fixed seeds); set
# SOURCE_DATE_EPOCH to also pin the "generated" date in the headers.
# Usage: bash test/cpu/native/generate.sh [group-filter]   (e.g. "arith,shift", or "x87")
# The x87 group has a generator of its own (gen_x87.c, see README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/.." && pwd)/vectors
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

CFLAGS="-O1 -g0 -Wall -fno-pie -no-pie -static -fno-stack-protector"
integer_sources=$(ls "$here"/gen_*.c | grep -v '/gen_x87\.c$')
gcc $CFLAGS -I"$here" -o "$build/gen" "$here"/harness.S "$here"/core.c $integer_sources
gcc $CFLAGS -o "$build/gen_x87" "$here"/gen_x87.c

mkdir -p "$out"
# keep the manifest entries of the files test/cpu/qemu/ wrote (qemu-*.jsonl.gz)
if [ -e "$out/MANIFEST.json" ]; then cp "$out/MANIFEST.json" "$build/MANIFEST.old"; fi
if [ $# -eq 0 ]; then
    find "$out" -maxdepth 1 \( -name '*.jsonl' -o -name '*.jsonl.gz' \) ! -name 'qemu-*' -delete
    rm -f "$out"/MANIFEST.json
fi
echo "generating into $out" >&2
filter=${1:-}
if [ -z "$filter" ] || [ "$filter" != "x87" ]; then "$build/gen" "$out" "$@"; fi
if [ -z "$filter" ] || [[ "$filter" == *x87* ]]; then "$build/gen_x87" "$out"; fi
for f in "$out"/*.jsonl; do
    [ -e "$f" ] || continue
    gzip -n -9 -f "$f"
done
node "$here/../merge-manifest.mjs" --keep "$build/MANIFEST.old" "$out/MANIFEST.json"
echo >&2
ls -l "$out" >&2
du -ch "$out"/*.gz | tail -1 >&2
