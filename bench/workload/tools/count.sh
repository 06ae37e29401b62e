#!/bin/sh
# Counts the guest instructions executed by ../workload.elf using QEMU user
# mode and a small TCG plugin (insn-count.c).  Needs qemu-i386 (Debian:
# apt-get install qemu-user) built with plugin support, gcc and python3.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -shared -fPIC -O2 -o "$tmp/insn-count.so" "$here/insn-count.c"
qemu-i386 -plugin "$tmp/insn-count.so,out=$tmp/counts.txt" "$here/../workload.elf"
python3 "$here/analyze.py" "$here/../workload.elf" "$tmp/counts.txt"
