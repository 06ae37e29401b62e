#!/usr/bin/env bash
# Run each committed test kernel on lguest.ts's bare machine and compare its
# serial output and exit status with the QEMU reference in expected/.
# Usage: bash test/kernels/compare.sh [NAME...]
# BARE overrides the command (default: npx tsx lguest --bare, from the repo root).
set -uo pipefail
cd "$(dirname "$0")/../.."
BARE=${BARE:-npx tsx lguest --bare}
k=test/kernels
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in $k/expected/*.txt; do n=${f##*/}; names+=("${n%.txt}"); done
fi
pass=0 fail=0
for n in "${names[@]}"; do
	out=$(mktemp)
	timeout 120 $BARE "$k/bin/$n.elf" </dev/null >"$out"
	status=$?
	if diff -u "$k/expected/$n.txt" "$out" >"$out.diff" && [ "$status" = "$(cat "$k/expected/$n.status")" ]; then
		echo "ok $n"
		pass=$((pass + 1))
	else
		echo "FAIL $n (exit status $status, expected $(cat "$k/expected/$n.status"))"
		head -n 40 "$out.diff"
		fail=$((fail + 1))
	fi
	rm -f "$out" "$out.diff"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
