#!/bin/sh
# Optional cross-check on real hardware when the kernel cannot execute
# i386 binaries (e.g. a sandbox without IA-32 emulation, where build.sh
# falls back to qemu-i386): builds the same C sources as a static x86-64
# program (the inline assembly is width-neutral; rt.c uses `syscall` there)
# and compares its output line with ../expected.txt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m64 -static -nostdlib -ffreestanding -fno-pic -fno-pie -no-pie \
	-fno-stack-protector -mgeneral-regs-only -O2 \
	-fno-tree-loop-distribute-patterns -w -o "$tmp/w64" \
	tools/start64.S rt.c crc.c sort.c str.c arith64.c vm.c bits.c main.c
"$tmp/w64" > "$tmp/out.txt"
if cmp -s "$tmp/out.txt" expected.txt; then
	echo "host x86-64 build agrees with expected.txt: $(cat expected.txt)"
else
	echo "MISMATCH: host x86-64 build printed: $(cat "$tmp/out.txt")" >&2
	exit 1
fi
