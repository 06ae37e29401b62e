#!/usr/bin/env bash
# Run each test kernel under QEMU and record its serial output and exit
# status as the reference: expected/NAME.txt and expected/NAME.status.
# Usage: bash test/kernels/record.sh [NAME...]   (needs qemu-system-i386)
set -euo pipefail
cd "$(dirname "$0")"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in bin/*.elf; do n=${f#bin/}; names+=("${n%.elf}"); done
fi
mkdir -p expected
for n in "${names[@]}"; do
	[ -f "bin/$n.elf" ] || { echo "bin/$n.elf missing: run build.sh" >&2; exit 1; }
	set +e
	timeout 60 qemu-system-i386 -accel tcg -kernel "bin/$n.elf" -m 128 -display none \
		-serial stdio -monitor none -device isa-debug-exit,iobase=0xf4,iosize=4 \
		-no-reboot -nic none </dev/null >"expected/$n.txt"
	status=$?
	set -e
	echo "$status" >"expected/$n.status"
	[ "$(tail -n 1 "expected/$n.txt")" = done ] || echo "WARNING: $n did not print its final 'done' line" >&2
	echo "$n: exit status $status, $(grep -c ': ' "expected/$n.txt") checks"
done
