// Machine code for the hand-built guests of the Host tests. Each helper
// returns the bytes of one i386 instruction; the encodings were checked
// against GNU as 2.40 (`as --32`, then objdump -d), as listed beside each.
export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

export const imm32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** mov $imm, %reg: b8+r id */
export const mov = (reg: number, imm: number) => [0xb8 + reg, ...imm32(imm)];
/** int $n: cd ib */
export const int = (n: number) => [0xcd, n];
/** jmp . : eb fe */
export const jmpSelf = [0xeb, 0xfe];
/** mov %reg, addr: 89 /r with disp32 (modrm 05 | reg << 3) */
export const store = (address: number, reg: number) => [0x89, 0x05 | (reg << 3), ...imm32(address)];
/** mov addr, %reg: 8b /r with disp32 */
export const load = (reg: number, address: number) => [0x8b, 0x05 | (reg << 3), ...imm32(address)];
/** movl $imm, addr: c7 05 disp32 imm32 */
export const storeImm = (address: number, imm: number) => [0xc7, 0x05, ...imm32(address), ...imm32(imm)];
/** incl addr: ff 05 disp32 */
export const incMem = (address: number) => [0xff, 0x05, ...imm32(address)];
/** push $imm32: 68 id */
export const pushImm = (imm: number) => [0x68, ...imm32(imm)];
/** mov %eax, %ds: 8e d8 */
export const movEaxToDs = [0x8e, 0xd8];
/** mov %eax, %gs: 8e e8 */
export const movEaxToGs = [0x8e, 0xe8];
/** mov %gs:disp32, %eax: 65 a1 disp32 */
export const loadGs = (offset: number) => [0x65, 0xa1, ...imm32(offset)];
export const iret = [0xcf], nop = [0x90], hlt = [0xf4], cli = [0xfa], ud2 = [0x0f, 0x0b], int3 = [0xcc];
/** in $imm8, %al: e4 ib; in (%dx), %eax: ed; in (%dx), %ax: 66 ed; out %al, $imm8: e6 ib; out %eax, (%dx): ef */
export const inImm8 = (port: number) => [0xe4, port], inDx32 = [0xed], inDx16 = [0x66, 0xed];
export const outImm8 = (port: number) => [0xe6, port], outDx32 = [0xef];

/** A hypercall: the arguments in edx, ebx, ecx, the number in eax, then int $0x1f. */
export function hcall(call: number, edx = 0, ebx = 0, ecx = 0): number[] {
  return [...mov(EDX, edx), ...mov(EBX, ebx), ...mov(ECX, ecx), ...mov(EAX, call), ...int(0x1f)];
}

/** The two words of a gate: selector __KERNEL_CS, as a Linux Guest sends them (type 0xE or 0xF). */
export function gate(handler: number, type: number, dpl: number, present = true): [number, number] {
  const lo = ((0x60 << 16) | (handler & 0xffff)) >>> 0;
  const hi = ((handler & 0xffff0000) | (present ? 0x8000 : 0) | (dpl << 13) | (type << 8)) >>> 0;
  return [lo, hi];
}

/** The two words of a segment descriptor. */
export function descriptor(base: number, limit: number, access: number, flags = 0xc): [number, number] {
  const low = ((base & 0xffff) << 16) | (limit & 0xffff);
  const high = (base & 0xff000000) | ((flags & 0xf) << 20) | (limit & 0xf0000) | ((access & 0xff) << 8) | ((base >>> 16) & 0xff);
  return [low >>> 0, high >>> 0];
}
