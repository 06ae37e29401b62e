#!/usr/bin/env bash
# Re-records the golden trace of a whole boot (test/boot.test.ts compares
# against it). Run after a change that is meant to change the trace.
set -euo pipefail
cd "$(dirname "$0")/../.."
# A machine of its own (book/devices-network.md L:138): the Guest is guest 0
# whatever other Launchers run on this computer.
export LGUEST_MACHINE="golden-$$"
printf 'echo hi\nhalt\n' | npx tsx lguest --clock=virtual --trace=hcall,trap,irq,dma,pgtable,count 64m images/vmlinux 2>&1 >/dev/null \
  | grep -v '^npm warn' > test/golden/boot-trace.txt
echo "test/golden/boot-trace.txt: $(wc -l < test/golden/boot-trace.txt) lines"
