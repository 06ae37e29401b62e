#!/bin/bash
# Rebuild the QEMU reference generator (a static i386 program) and record the
# vectors that the native 64-bit recording cannot cover, under qemu-i386:
#   test/cpu/vectors/qemu-{bcd,stack32,addr16,misc,p6}.jsonl.gz
# and merge their entries into test/cpu/vectors/MANIFEST.json.
# Output is deterministic (fixed seeds); set SOURCE_DATE_EPOCH to also pin the
# "generated" date.  Needs: gcc with -m32 (gcc-multilib), qemu-user (qemu-i386),
# gzip, node.
# Usage: bash test/cpu/qemu/generate.sh [group-filter]   (e.g. "bcd,misc")
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/.." && pwd)/vectors
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

command -v qemu-i386 >/dev/null || { echo "qemu-i386 not found: apt-get install qemu-user" >&2; exit 1; }
# "qemu-i386 version 7.2.22 (Debian ...)" -> "qemu-i386 7.2.22 (Debian ...)"
qemu_version=$(qemu-i386 --version | head -1 | sed 's/ version / /')

CFLAGS="-m32 -O1 -g0 -Wall -fno-pie -no-pie -static -fno-stack-protector"
gcc $CFLAGS -I"$here" -o "$build/gen" "$here"/harness.S "$here"/core.c "$here"/gen_*.c

mkdir -p "$out"
echo "generating into $out with $qemu_version" >&2
VECTORS_QEMU_VERSION="$qemu_version" qemu-i386 "$build/gen" "$build" "$@"
for f in "$build"/qemu-*.jsonl; do
    gzip -n -9 -c "$f" > "$out/$(basename "$f").gz"
done
node "$here/../merge-manifest.mjs" "$out/MANIFEST.json" "$build"/qemu-*.manifest.json
ls -l "$out"/qemu-*.gz >&2
