#!/bin/sh
# Builds bench/workload/workload.elf (static i386, no libc) and records the
# output of a run in expected.txt.  Reproducible: no build id, no absolute
# paths, no timestamps, fixed source order.
set -eu
cd "$(dirname "$0")"

CC=${CC:-gcc}
CFLAGS="-m32 -static -nostdlib -ffreestanding -fno-pic -fno-pie -no-pie \
 -fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables \
 -march=i686 -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only \
 -O2 -fno-tree-loop-distribute-patterns -fno-ident \
 -Wall -Wextra -Wno-unused-parameter \
 -ffile-prefix-map=$PWD=. \
 -Wl,--build-id=none -Wl,-z,noseparate-code -Wl,-e,_start"

SRCS="start.S rt.c crc.c sort.c str.c arith64.c vm.c bits.c main.c"

# shellcheck disable=SC2086
$CC $CFLAGS -o workload.elf $SRCS

# Guard: no x87 / MMX / SSE instructions.
if objdump -d --no-show-raw-insn workload.elf |
	awk -F'\t' 'NF >= 2 { split($2, m, " "); print m[1] }' |
	grep -E '^f|^(emms|movd|movq|pause|prefetch|lfence|sfence|mfence|ldmxcsr|stmxcsr)' >/dev/null ||
   objdump -d workload.elf | grep -E '%(st|mm|xmm)[0-9(]' >/dev/null; then
	echo "build.sh: floating-point/SIMD instruction found in workload.elf" >&2
	exit 1
fi

# Run it: natively if the kernel executes i386 binaries, else (e.g. in a
# sandbox without IA-32 emulation) under qemu-i386 if available.
how=native
start=$(date +%s%N)
rc=0
./workload.elf > expected.txt.tmp 2>/dev/null || rc=$?
if [ "$rc" -eq 126 ] && command -v qemu-i386 >/dev/null 2>&1; then
	how=qemu-i386
	start=$(date +%s%N)
	rc=0
	qemu-i386 ./workload.elf > expected.txt.tmp || rc=$?
fi
end=$(date +%s%N)
if [ "$rc" -ne 0 ]; then
	echo "build.sh: workload run ($how) failed, exit status $rc" >&2
	rm -f expected.txt.tmp
	exit 1
fi
mv expected.txt.tmp expected.txt
printf 'run (%s): %s ms\n' "$how" "$(( (end - start) / 1000000 ))"
printf 'size: %s bytes, sha256 %s\n' "$(wc -c < workload.elf)" \
	"$(sha256sum workload.elf | cut -d' ' -f1)"
cat expected.txt
