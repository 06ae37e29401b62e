#!/usr/bin/env python3
"""Summarise a counts file written by insn-count.so.

usage: analyze.py workload.elf counts.txt

Prints the total number of executed instructions (a rep-prefixed string
instruction counts once per iteration, plus once for the final check), an
estimate with each rep instruction counted once, the split per source file
and per function, and the dynamic mnemonic mix."""
import collections
import subprocess
import sys

elf, counts = sys.argv[1], sys.argv[2]

# Function symbols; local symbols follow the STT_FILE entry of their file.
syms, cur = [], None
out = subprocess.run(['readelf', '-sW', elf], capture_output=True, text=True,
                     check=True).stdout
for line in out.splitlines():
    p = line.split()
    if len(p) < 8 or not p[0].endswith(':'):
        continue
    typ, bind, name = p[3], p[4], p[7]
    if typ == 'FILE':
        cur = name
        continue
    if typ == 'FUNC':
        syms.append((int(p[1], 16), int(p[2]), name,
                     cur if bind == 'LOCAL' else None))
GLOBAL_FILE = {'main': 'main.c', '_start': 'start.S', 'phase_crc': 'crc.c',
               'phase_sort': 'sort.c', 'phase_string': 'str.c',
               'phase_arith64': 'arith64.c', 'phase_vm': 'vm.c',
               'phase_bits': 'bits.c'}


def sym_of(addr):
    for s in syms:
        if s[0] <= addr < s[0] + max(s[1], 1):
            return s
    return None


rows = []
with open(counts) as f:
    for line in f:
        a, c, d = line.rstrip('\n').split(' ', 2)
        rows.append((int(a, 16), int(c), d))
rows.sort()
total = sum(r[1] for r in rows)
byfunc, byfile, bymn = (collections.Counter() for _ in range(3))
rep_iter = rep_entries = 0
prev = None
for a, c, d in rows:
    s = sym_of(a)
    fn = s[2] if s else '?'
    fl = (s[3] or GLOBAL_FILE.get(fn, 'rt.c')) if s else '?'
    byfunc[fn] += c
    byfile[fl] += c
    w = d.split()
    mn = w[0] if w else '?'
    if mn in ('rep', 'repe', 'repne', 'repz', 'repnz'):
        mn = mn + ' ' + w[1]
        rep_iter += c
        # every rep instruction here directly follows, in straight-line
        # code, an instruction executed once per rep execution
        rep_entries += prev[1] if prev else 0
    bymn[mn] += c
    prev = (a, c, d)

print('executed instructions (rep iterations counted individually): %d' % total)
print('rep string instructions: %d executions, %d iterations'
      % (rep_entries, rep_iter))
print('executed instructions, each rep instruction counted once: ~%d'
      % (total - rep_iter + rep_entries))
print('\nper source file:')
for k, v in byfile.most_common():
    print('  %-12s %12d %5.1f%%' % (k, v, 100.0 * v / total))
print('\nper function:')
for k, v in byfunc.most_common():
    print('  %-26s %12d %5.1f%%' % (k, v, 100.0 * v / total))
print('\ndynamic mnemonic mix (".byte" = insn split across a page boundary,'
      ' shown undecoded by QEMU):')
for k, v in bymn.most_common():
    print('  %-14s %12d %6.2f%%' % (k, v, 100.0 * v / total))
