// The string and port instructions (book/cpu-strings.md): the rules the
// native vectors cannot show, because they were recorded in 64-bit mode
// with flat segments and no ports (see test/cpu/native/README.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import type { IoPorts } from "../src/cpu/io.ts";
import { GENERAL_PROTECTION, PAGE_FAULT } from "../src/cpu/faults.ts";
import { STOP_BUDGET, STOP_EXCEPTION, STOP_HALT } from "../src/cpu/stop.ts";
import { CF, DF, EAX, EBX, ECX, EDI, EDX, ES, ESI, ESP, FS, IOPL, SF, ZF } from "../src/cpu/registers.ts";
import { copyForward, REP_CHUNK, stringFastPath } from "../src/cpu/strings.ts";
import { CR0_PG } from "../src/cpu/paging.ts";
import { writeCr0 } from "../src/cpu/system.ts";
import { flushTlb, invalidatePage } from "../src/cpu/tlb.ts";

const CODE = 0x1000;
const HLT = 0xf4;

/** A bare CPU with `code` at CODE and eip there. */
function machine(code: number[], options: { ram?: number; io?: IoPorts } = {}): CPU {
  const cpu = new CPU(new PhysicalMemory(options.ram ?? 0x100000), options.io);
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  cpu.regs[ESP] = 0x8000;
  return cpu;
}

const u32 = (value: number) => value >>> 0;

/**
 * Makes one linear page not present: turns on paging with an identity map of
 * the first MiB (tables at 0xF0000) in which that page is missing; returns
 * the undo, which makes it present again.
 */
function faultOnPage(cpu: CPU, page: number): () => void {
  const directory = 0xf0000, table = 0xf1000;
  cpu.memory.write32(directory, table | 7);
  for (let k = 0; k < 256; k++) cpu.memory.write32(table + 4 * k, k === page ? 0 : (k << 12) | 7);
  cpu.cr3 = directory;
  writeCr0(cpu, cpu.cr0 | CR0_PG);
  flushTlb(cpu);
  return () => {
    cpu.memory.write32(table + 4 * page, (page << 12) | 7);
    invalidatePage(cpu, page << 12);
  };
}

/** Runs a test body with the fast runs on and again with them off. */
function bothPaths(body: (fast: boolean) => void): void {
  for (const fast of [true, false]) {
    stringFastPath.enabled = fast;
    try {
      body(fast);
    } finally {
      stringFastPath.enabled = true;
    }
  }
}

/** A deterministic pseudo-random generator (xorshift32). */
function random(seed: number): () => number {
  let state = seed | 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
}

// ---------------------------------------------------------------- 16-bit addressing

test("with the 67 prefix, movsb uses si and di and wraps si at 0xFFFF, keeping the upper halves", () => {
  const cpu = machine([0x67, 0xa4]);
  cpu.memory.ram[0xffff] = 0xab;
  cpu.regs[ESI] = 0x1234ffff;
  cpu.regs[EDI] = 0x56782000;
  cpu.run(1);
  assert.equal(cpu.memory.ram[0x2000], 0xab);
  assert.equal(u32(cpu.regs[ESI]), 0x12340000);
  assert.equal(u32(cpu.regs[EDI]), 0x56782001);
});

test("with the 67 prefix, rep movsb counts with cx and the source wraps to offset 0, not 0x10000", () => {
  const cpu = machine([0x67, 0xf3, 0xa4]);
  cpu.memory.ram.set([1, 2], 0xfffe);
  cpu.memory.ram[0x0000] = 3;
  cpu.memory.ram[0x10000] = 4;
  cpu.regs[ECX] = 0xabcd0003 | 0;
  cpu.regs[ESI] = 0x0000fffe;
  cpu.regs[EDI] = 0x3000;
  assert.equal(cpu.run(1), STOP_BUDGET);
  assert.deepEqual([...cpu.memory.ram.subarray(0x3000, 0x3004)], [1, 2, 3, 0]);
  assert.equal(u32(cpu.regs[ECX]), 0xabcd0000);
  assert.equal(u32(cpu.regs[ESI]), 0x00000001);
  assert.equal(u32(cpu.regs[EDI]), 0x3003);
});

test("with the 67 prefix and DF set, di wraps from 0 down to 0xFFFE for words", () => {
  const cpu = machine([0xfd, 0x67, 0x66, 0xab]); // std; stosw with 16-bit addressing
  cpu.regs[EAX] = 0xbeef;
  cpu.regs[EDI] = 0x00070000;
  cpu.run(2);
  assert.equal(cpu.memory.ram[0x0000] | (cpu.memory.ram[0x0001] << 8), 0xbeef);
  assert.equal(u32(cpu.regs[EDI]), 0x0007fffe);
});

test("with the 67 prefix, rep stosd repeats cx times and leaves the upper half of ecx alone", () => {
  const cpu = machine([0x67, 0xf3, 0xab]);
  cpu.regs[EAX] = 0x11223344;
  cpu.regs[ECX] = 0x00010002;
  cpu.regs[EDI] = 0x3000;
  cpu.run(1);
  assert.equal(u32(cpu.regs[ECX]), 0x00010000);
  assert.equal(cpu.memory.read32(0x3000), 0x11223344);
  assert.equal(cpu.memory.read32(0x3004), 0x11223344);
  assert.equal(cpu.memory.read32(0x3008), 0);
  assert.equal(u32(cpu.regs[EDI]), 0x3008);
});

test("with the 67 prefix, repne scasb searches with cx and di only", () => {
  const cpu = machine([0x67, 0xf2, 0xae]);
  cpu.memory.ram.set([5, 6, 7, 8], 0x3000);
  cpu.regs[EAX] = 7;
  cpu.regs[ECX] = 0x7fff0010;
  cpu.regs[EDI] = 0x44443000;
  cpu.run(1);
  assert.equal(u32(cpu.regs[ECX]), 0x7fff000d); // three bytes looked at, the match included
  assert.equal(u32(cpu.regs[EDI]), 0x44443003);
  assert.equal(cpu.zero(), 1);
});

// ---------------------------------------------------------------- prefixes and segments

test("F2 in front of movs repeats it like rep", () => {
  const cpu = machine([0xf2, 0xa4]);
  cpu.memory.ram.set([9, 8, 7, 6], 0x3000);
  cpu.regs[ECX] = 3;
  cpu.regs[ESI] = 0x3000;
  cpu.regs[EDI] = 0x4000;
  cpu.run(1);
  assert.deepEqual([...cpu.memory.ram.subarray(0x4000, 0x4004)], [9, 8, 7, 0]);
  assert.equal(cpu.regs[ECX], 0);
});

test("a segment override moves the source of movs but never es:edi, and stos and scas ignore it", () => {
  // fs movsb; fs stosb; fs scasb
  const cpu = machine([0x64, 0xa4, 0x64, 0xaa, 0x64, 0xae]);
  cpu.segBase[FS] = 0x8000;
  cpu.segBase[ES] = 0x20000;
  cpu.memory.ram[0x8100] = 0x77; // fs:0x100
  cpu.memory.ram[0x0100] = 0x11; // ds:0x100, which must not be read
  cpu.memory.ram[0x20002] = 0x42; // es:2, what scasb compares with
  cpu.memory.ram[0x8002] = 0x99; // fs:2, which it must not
  cpu.regs[ESI] = 0x100;
  cpu.regs[EDI] = 0;
  cpu.regs[EAX] = 0x42;
  cpu.run(3);
  assert.equal(cpu.memory.ram[0x20000], 0x77, "movs: fs:esi to es:edi");
  assert.equal(cpu.memory.ram[0x20001], 0x42, "stos: es:edi despite the override");
  assert.equal(cpu.memory.ram[0x8001], 0, "stos did not write through fs");
  assert.equal(cpu.zero(), 1, "scas compared with es:edi");
  assert.equal(cpu.regs[EDI], 3);
});

test("lods and outs read their source through the override segment", () => {
  const written: number[] = [];
  const io: IoPorts = { portIn: () => 0, portOut: (_port, _size, value) => void written.push(value) };
  const cpu = machine([0x26, 0xac, 0x26, 0x6e], { io }); // es lodsb; es outsb
  cpu.segBase[ES] = 0x20000;
  cpu.memory.ram.set([0x31, 0x32], 0x20010);
  cpu.regs[ESI] = 0x10;
  cpu.run(2);
  assert.equal(cpu.regs8[0], 0x31);
  assert.deepEqual(written, [0x32]);
});

// ---------------------------------------------------------------- faults and restarts

test("a rep movsb that faults midway leaves ecx, esi and edi at the faulting element, and restarting it finishes", () => {
  bothPaths((fast) => {
    const cpu = machine([0xf3, 0xa4, HLT]);
    for (let k = 0; k < 0x200; k++) cpu.memory.ram[0x3000 + k] = (k * 7 + 1) & 0xff;
    cpu.regs[ESI] = 0x3000;
    cpu.regs[EDI] = 0x4f00;
    cpu.regs[ECX] = 0x200;
    const undo = faultOnPage(cpu, 5);
    assert.equal(cpu.run(10), STOP_EXCEPTION, `fast=${fast}`);
    assert.equal(cpu.exceptionVector, PAGE_FAULT);
    assert.equal(cpu.eip, CODE, "eip points at the rep instruction");
    assert.equal(cpu.regs[ECX], 0x100, "ecx counts what is left");
    assert.equal(cpu.regs[ESI], 0x3100);
    assert.equal(cpu.regs[EDI], 0x5000);
    assert.deepEqual(cpu.memory.ram.subarray(0x4f00, 0x5000), cpu.memory.ram.subarray(0x3000, 0x3100));
    assert.equal(cpu.memory.ram[0x5000], 0, "nothing written past the fault");
    undo();
    assert.equal(cpu.run(10), STOP_HALT);
    assert.equal(cpu.regs[ECX], 0);
    assert.equal(cpu.regs[ESI], 0x3200);
    assert.equal(cpu.regs[EDI], 0x5100);
    assert.deepEqual(cpu.memory.ram.subarray(0x4f00, 0x5100), cpu.memory.ram.subarray(0x3000, 0x3200));
  });
});

test("a rep stosd that faults on a page-crossing element writes none of it", () => {
  bothPaths(() => {
    const cpu = machine([0xf3, 0xab]);
    cpu.regs[EAX] = -1;
    cpu.regs[EDI] = 0x4ff6; // elements at ...f6, ...fa, then ...fe straddles into page 5
    cpu.regs[ECX] = 5;
    faultOnPage(cpu, 5);
    assert.equal(cpu.run(1), STOP_EXCEPTION);
    assert.equal(cpu.regs[ECX], 3);
    assert.equal(cpu.regs[EDI], 0x4ffe);
    assert.deepEqual([...cpu.memory.ram.subarray(0x4ff6, 0x5000)], [...new Array(8).fill(0xff), 0, 0]);
  });
});

test("a fault in repe cmpsb restores the flags the instruction started with", () => {
  bothPaths(() => {
    const cpu = machine([0xf3, 0xa6]);
    cpu.memory.ram.set([1, 2, 3, 4], 0x3000);
    cpu.memory.ram.set([1, 2], 0x4ffe); // equal so far; the third element is on page 5
    cpu.regs[ESI] = 0x3000;
    cpu.regs[EDI] = 0x4ffe;
    cpu.regs[ECX] = 4;
    cpu.setEflags(CF | SF, CF | SF | ZF);
    faultOnPage(cpu, 5);
    assert.equal(cpu.run(1), STOP_EXCEPTION);
    assert.equal(cpu.regs[ECX], 2);
    assert.equal(cpu.regs[ESI], 0x3002);
    assert.equal(cpu.regs[EDI], 0x5000);
    assert.equal(cpu.eflags() & (CF | SF | ZF), CF | SF, "not the ZF=1 of the two equal bytes");
  });
});

test(`a rep movsb of 100000 bytes runs as chunks of ${REP_CHUNK}, restarting at the same instruction`, () => {
  bothPaths((fast) => {
    const cpu = machine([0xf3, 0xa4, HLT]);
    const next = random(42);
    for (let k = 0; k < 100000; k++) cpu.memory.ram[0x10000 + k] = next();
    cpu.regs[ESI] = 0x10000;
    cpu.regs[EDI] = 0x40000;
    cpu.regs[ECX] = 100000;
    assert.equal(cpu.run(1), STOP_BUDGET);
    assert.equal(cpu.eip, CODE, `fast=${fast}: back at the rep for the next chunk`);
    assert.equal(cpu.regs[ECX], 100000 - REP_CHUNK);
    assert.equal(cpu.regs[ESI], 0x10000 + REP_CHUNK);
    assert.equal(cpu.regs[EDI], 0x40000 + REP_CHUNK);
    assert.equal(cpu.run(1000), STOP_HALT);
    assert.equal(cpu.regs[ECX], 0);
    assert.equal(cpu.instructions, Math.ceil(100000 / REP_CHUNK) + 1, "each chunk counts once, and the hlt");
    assert.deepEqual(cpu.memory.ram.subarray(0x40000, 0x40000 + 100000), cpu.memory.ram.subarray(0x10000, 0x10000 + 100000));
  });
});

test("a long repne scasb also runs in chunks and stops at the match", () => {
  bothPaths(() => {
    const cpu = machine([0xf2, 0xae, HLT]);
    cpu.memory.ram.fill(1, 0x10000, 0x20000);
    cpu.memory.ram[0x1c000] = 0;
    cpu.regs[EAX] = 0;
    cpu.regs[EDI] = 0x10000;
    cpu.regs[ECX] = -1;
    assert.equal(cpu.run(1), STOP_BUDGET);
    assert.equal(cpu.eip, CODE);
    assert.equal(cpu.run(100), STOP_HALT);
    assert.equal(u32(cpu.regs[ECX]), 0xffffffff - 0xc001);
    assert.equal(cpu.regs[EDI], 0x1c001);
  });
});

// ---------------------------------------------------------------- overlap and fast runs

test("overlapping forward rep movsb with edi = esi + 1 replicates the first byte", () => {
  bothPaths((fast) => {
    const cpu = machine([0xf3, 0xa4, HLT]);
    const next = random(7);
    for (let k = 0; k < 0x2000; k++) cpu.memory.ram[0x3000 + k] = next();
    cpu.memory.ram[0x3000] = 0x5a;
    cpu.regs[ESI] = 0x3000;
    cpu.regs[EDI] = 0x3001;
    cpu.regs[ECX] = 0x1800;
    assert.equal(cpu.run(10), STOP_HALT);
    assert.ok(cpu.memory.ram.subarray(0x3000, 0x4801).every((b) => b === 0x5a), `fast=${fast}`);
  });
});

test("copyForward matches a byte-by-byte forward copy for every distance", () => {
  const next = random(3);
  for (let length = 1; length <= 40; length++) {
    for (let distance = -length - 1; distance <= length + 1; distance++) {
      const base = new Uint8Array(160).map(() => next());
      const expected = base.slice();
      const from = 60, to = 60 + distance;
      for (let k = 0; k < length; k++) expected[to + k] = expected[from + k];
      const actual = base.slice();
      copyForward(actual, from, to, length);
      assert.deepEqual(actual, expected, `length ${length}, distance ${distance}`);
    }
  }
});

test("fast runs of rep movs and rep stos give exactly what the element-by-element loop gives", () => {
  const next = random(2024);
  const RAM = 0x20000;
  const HIGH_CODE = 0x1f000;
  const initial = new Uint8Array(RAM).map(() => next());
  const cpus = [true, false].map(() => new CPU(new PhysicalMemory(RAM)));
  for (let trial = 0; trial < 400; trial++) {
    const store = next() % 3 === 0;
    const size = [1, 2, 4][next() % 3];
    const code = [0xf3, ...(size === 2 ? [0x66] : []), (store ? 0xaa : 0xa4) + (size > 1 ? 1 : 0), HLT];
    if (next() % 4 === 0) code.unshift(0xfd); // std: the runs go backwards
    // Data between 0x2000 and 0x16000 whichever way DF points; the code sits above it.
    const source = 0x8000 + (next() % 0x8000);
    const nearby = next() % 2 === 0;
    const destination = nearby ? source + (next() % 41) - 20 : 0x8000 + (next() % 0x8000);
    const count = next() % 3 === 0 ? next() % 6000 : next() % 64;
    const eax = next() | 0;
    const flush = next() % 2 === 0;
    cpus.forEach((cpu, n) => {
      stringFastPath.enabled = n === 0;
      try {
        cpu.memory.ram.set(initial);
        cpu.memory.ram.set(code, HIGH_CODE);
        cpu.forgetCode(HIGH_CODE >>> 12);
        if (flush) flushTlb(cpu);
        cpu.setEflags(0x202, -1);
        cpu.eip = HIGH_CODE;
        cpu.regs.set([eax, count, 0, 0, 0x1e000, 0, source, destination]);
        assert.equal(cpu.run(1000), STOP_HALT);
      } finally {
        stringFastPath.enabled = true;
      }
    });
    const what = `trial ${trial}: ${code.map((b) => b.toString(16)).join(" ")} esi=${source.toString(16)} edi=${destination.toString(16)} ecx=${count}`;
    assert.deepEqual([...cpus[0].regs], [...cpus[1].regs], what);
    assert.ok(Buffer.from(cpus[0].memory.ram).equals(Buffer.from(cpus[1].memory.ram)), what);
  }
});

test("fast runs of repe/repne cmps and scas give exactly what the element-by-element loop gives", () => {
  const next = random(77);
  const RAM = 0x20000;
  const HIGH_CODE = 0x1f000;
  const cpus = [true, false].map(() => new CPU(new PhysicalMemory(RAM)));
  for (let trial = 0; trial < 400; trial++) {
    const scan = next() % 2 === 0;
    const size = [1, 2, 4][next() % 3];
    const prefix = next() % 2 === 0 ? 0xf3 : 0xf2;
    const code = [prefix, ...(size === 2 ? [0x66] : []), (scan ? 0xae : 0xa6) + (size > 1 ? 1 : 0), HLT];
    if (next() % 4 === 0) code.unshift(0xfd); // std: the fast runs must stand aside
    // Few distinct byte values, so that repe finds long equal stretches and repne finds matches.
    const alphabet = 1 + (next() % 3);
    const source = 0x8000 + (next() % 0x8000);
    const destination = next() % 3 === 0 ? source + (next() % 41) - 20 : 0x8000 + (next() % 0x8000);
    const initial = new Uint8Array(RAM).map(() => next() % alphabet);
    if (next() % 2 === 0) initial.copyWithin(destination, source, source + 0x2000); // long equal stretches
    const count = next() % 3 === 0 ? next() % 9000 : next() % 64;
    const eax = next() % alphabet * 0x01010101;
    const flush = next() % 2 === 0;
    const flags = 0x202 | (next() & (CF | ZF | SF));
    cpus.forEach((cpu, n) => {
      stringFastPath.enabled = n === 0;
      try {
        cpu.memory.ram.set(initial);
        cpu.memory.ram.set(code, HIGH_CODE);
        cpu.forgetCode(HIGH_CODE >>> 12);
        if (flush) flushTlb(cpu);
        cpu.setEflags(flags, -1);
        cpu.eip = HIGH_CODE;
        cpu.regs.set([eax, count, 0, 0, 0x1e000, 0, source, destination]);
        assert.equal(cpu.run(1000), STOP_HALT);
      } finally {
        stringFastPath.enabled = true;
      }
    });
    const what = `trial ${trial}: ${code.map((b) => b.toString(16)).join(" ")} esi=${source.toString(16)} edi=${destination.toString(16)} ecx=${count}`;
    assert.deepEqual([...cpus[0].regs], [...cpus[1].regs], what);
    assert.equal(cpus[0].eflags(), cpus[1].eflags(), what);
    assert.equal(cpus[0].instructions, cpus[1].instructions, what);
  }
});

// ---------------------------------------------------------------- self-modifying code

for (const target of [0x3000, 0x1800]) {
  const where = target >>> 12 === CODE >>> 12 ? "the page of the rep itself" : "another page";
  test(`rep stosb into decoded code in ${where} throws the old decoding away`, () => {
    const call = (at: number) => {
      const rel = target - (at + 5);
      return [0xe8, rel & 0xff, (rel >> 8) & 0xff, (rel >> 16) & 0xff, (rel >> 24) & 0xff];
    };
    const code = [
      ...call(CODE), // call target: inc ebx x4; ret
      0xbf, target & 0xff, target >> 8, 0, 0, // mov edi, target
      0xb9, 4, 0, 0, 0, // mov ecx, 4
      0xb0, 0x4b, // mov al, 0x4b (dec ebx)
      0xf3, 0xaa, // rep stosb
    ];
    code.push(...call(CODE + code.length), HLT);
    bothPaths((fast) => {
      const cpu = machine(code);
      cpu.memory.ram.set([0x43, 0x43, 0x43, 0x43, 0xc3], target);
      assert.equal(cpu.run(100), STOP_HALT);
      assert.equal(cpu.regs[EBX], 0, `fast=${fast}: four incs, then four decs`);
    });
  });
}

// ---------------------------------------------------------------- ports

function recordingPorts(): { io: IoPorts; log: string[] } {
  const log: string[] = [];
  let reads = 0;
  const io: IoPorts = {
    portIn(port, size) {
      log.push(`in ${port.toString(16)}/${size}`);
      reads++;
      return size === 1 ? 0x50 + reads : size === 2 ? 0x1200 + reads : (0x89abcd00 + reads) | 0;
    },
    portOut(port, size, value) {
      log.push(`out ${port.toString(16)}/${size}=${u32(value).toString(16)}`);
    },
  };
  return { io, log };
}

test("in reads the immediate or dx port at the operand size into al, ax or eax", () => {
  const { io, log } = recordingPorts();
  const code = [0xe4, 0x60, 0x66, 0xe5, 0x61, 0xe5, 0x62, 0xec, 0x66, 0xed, 0xed];
  const cpu = machine(code, { io });
  cpu.regs[EDX] = 0xabcd03f8 | 0;
  cpu.regs[EAX] = 0x11223344;
  cpu.run(1);
  assert.equal(u32(cpu.regs[EAX]), 0x11223351, "in al keeps the rest of eax");
  cpu.run(1);
  assert.equal(u32(cpu.regs[EAX]), 0x11221202, "in ax keeps the upper half");
  cpu.run(4);
  assert.equal(u32(cpu.regs[EAX]), 0x89abcd06);
  assert.deepEqual(log, ["in 60/1", "in 61/2", "in 62/4", "in 3f8/1", "in 3f8/2", "in 3f8/4"]);
});

test("out writes al, ax or eax to the immediate or dx port", () => {
  const { io, log } = recordingPorts();
  const code = [0xe6, 0x80, 0x66, 0xe7, 0x81, 0xe7, 0x82, 0xee, 0x66, 0xef, 0xef];
  const cpu = machine(code, { io });
  cpu.regs[EDX] = 0x1f0;
  cpu.regs[EAX] = 0xdeadbeef | 0;
  cpu.run(6);
  assert.deepEqual(log, ["out 80/1=ef", "out 81/2=beef", "out 82/4=deadbeef", "out 1f0/1=ef", "out 1f0/2=beef", "out 1f0/4=deadbeef"]);
});

test("rep insw reads the port once per element into es:edi; rep outsb writes ds:esi to the port", () => {
  const { io, log } = recordingPorts();
  const cpu = machine([0x66, 0xf3, 0x6d, 0xf3, 0x6e], { io });
  cpu.regs[EDX] = 0x1f0;
  cpu.regs[EDI] = 0x3000;
  cpu.regs[ECX] = 3;
  cpu.run(1);
  assert.deepEqual([...new Uint16Array(cpu.memory.ram.buffer, 0x3000, 3)], [0x1201, 0x1202, 0x1203]);
  assert.equal(cpu.regs[EDI], 0x3006);
  cpu.memory.ram.set([7, 8, 9], 0x3100);
  cpu.regs[ESI] = 0x3100;
  cpu.regs[ECX] = 3;
  cpu.regs[EDX] = 0x3f8;
  cpu.run(1);
  assert.equal(cpu.regs[ESI], 0x3103);
  assert.deepEqual(log.slice(3), ["out 3f8/1=7", "out 3f8/1=8", "out 3f8/1=9"]);
});

test("in, out, ins and outs at CPL 3 with IOPL 0 raise #GP(0) and touch no port", () => {
  for (const code of [[0xec], [0xe4, 0x60], [0xef], [0xe6, 0x80], [0x6c], [0xf3, 0x6f]]) {
    const { io, log } = recordingPorts();
    const cpu = machine(code, { io });
    cpu.cpl = 3;
    cpu.regs[EDI] = 0x3000;
    cpu.regs[ECX] = 0; // even a rep with nothing to do checks first
    assert.equal(cpu.run(1), STOP_EXCEPTION, code.join(" "));
    assert.equal(cpu.exceptionVector, GENERAL_PROTECTION);
    assert.equal(cpu.exceptionErrorCode, 0);
    assert.equal(cpu.eip, CODE);
    assert.deepEqual(log, []);
  }
});

test("at CPL 3 the ports are allowed when IOPL is 3", () => {
  const { io, log } = recordingPorts();
  const cpu = machine([0xec], { io });
  cpu.cpl = 3;
  cpu.setEflags(IOPL, IOPL);
  assert.equal(cpu.run(1), STOP_BUDGET);
  assert.deepEqual(log, ["in 0/1"]);
});

test("ins whose destination faults has not read the port, so the restart loses no data", () => {
  const { io, log } = recordingPorts();
  const cpu = machine([0x6c], { io });
  cpu.regs[EDI] = 0x5000;
  const undo = faultOnPage(cpu, 5);
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, PAGE_FAULT);
  assert.deepEqual(log, []);
  assert.equal(cpu.regs[EDI], 0x5000);
  undo();
  cpu.run(1);
  assert.deepEqual(log, ["in 0/1"]);
  assert.equal(cpu.memory.ram[0x5000], 0x51);
});

test("the direction flag moves esi and edi down for every string instruction", () => {
  const { io } = recordingPorts();
  // std; movsd; lodsw; stosb; cmpsb; scasd; insb; outsw
  const cpu = machine([0xfd, 0xa5, 0x66, 0xad, 0xaa, 0xa6, 0xaf, 0x6c, 0x66, 0x6f], { io });
  cpu.regs[ESI] = 0x3100;
  cpu.regs[EDI] = 0x4100;
  cpu.run(8);
  assert.equal(cpu.regs[ESI], 0x3100 - 4 - 2 - 1 - 2);
  assert.equal(cpu.regs[EDI], 0x4100 - 4 - 1 - 1 - 4 - 1);
  assert.equal(cpu.flags & DF, DF);
});
