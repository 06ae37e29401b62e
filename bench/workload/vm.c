/* Phase 5: a tiny register bytecode interpreter.
 * 34 dense opcodes dispatched by a switch, which the compiler turns into
 * an indirect jmp through a jump table.  Instructions are 4 bytes:
 * op, a, b, c (with b:c also read as a signed 16-bit immediate), so the
 * decoder uses movzbl/movswl.  Four small programs (assembled at run time
 * by a two-pass emitter with labels) are run: a byte sieve, Collatz step
 * counting, recursive Fibonacci (CALL/RET/PUSH/POP) and a memory hash that
 * uses every remaining opcode. */
#include "rt.h"

enum {
	OP_HALT, OP_LI, OP_LUI, OP_MOV, OP_ADD, OP_SUB, OP_MUL, OP_MULHU,
	OP_DIVU, OP_REMU, OP_AND, OP_OR, OP_XOR, OP_SHL, OP_SHR, OP_SAR,
	OP_ROL, OP_ADDI, OP_SLT, OP_SLTU, OP_SEQ, OP_LDW, OP_STW, OP_LDB,
	OP_STB, OP_JMP, OP_JZ, OP_JNZ, OP_CALL, OP_RET, OP_PUSH, OP_POP,
	OP_LDBS, OP_NOT
};

#define VMEM_WORDS 16384 /* 64 KiB */
#define VSTACK 1024

static u32 vmem[VMEM_WORDS];
#define vmemb ((u8 *)vmem)
static u32 vstack[VSTACK];

static u8 prog[2048 * 4];
static u32 plen;
static u32 lab[40];

/* Runs from pc until HALT; returns the number of instructions executed,
 * or 0 on a bad opcode. */
static NOINLINE u32 vm_run(const u8 *code, u32 pc, u32 *r)
{
	u32 sp = 0, steps = 0;
	for (;;) {
		const u8 *p = code + pc * 4;
		u32 a = p[1] & 15;
		u32 b = p[2] & 15;
		u32 c = p[3] & 15;
		i32 x = *(const i16 *)(p + 2);
		pc++;
		steps++;
		switch (p[0]) {
		case OP_HALT:
			return steps;
		case OP_LI:
			r[a] = (u32)x;
			break;
		case OP_LUI:
			r[a] = (r[a] & 0xffff) | ((u32)(u16)x << 16);
			break;
		case OP_MOV:
			r[a] = r[b];
			break;
		case OP_ADD:
			r[a] = r[b] + r[c];
			break;
		case OP_SUB:
			r[a] = r[b] - r[c];
			break;
		case OP_MUL:
			r[a] = r[b] * r[c];
			break;
		case OP_MULHU:
			r[a] = (u32)(((u64)r[b] * r[c]) >> 32);
			break;
		case OP_DIVU:
			r[a] = r[c] ? r[b] / r[c] : 0xffffffffu;
			break;
		case OP_REMU:
			r[a] = r[c] ? r[b] % r[c] : r[b];
			break;
		case OP_AND:
			r[a] = r[b] & r[c];
			break;
		case OP_OR:
			r[a] = r[b] | r[c];
			break;
		case OP_XOR:
			r[a] = r[b] ^ r[c];
			break;
		case OP_SHL:
			r[a] = r[b] << (r[c] & 31);
			break;
		case OP_SHR:
			r[a] = r[b] >> (r[c] & 31);
			break;
		case OP_SAR:
			r[a] = (u32)((i32)r[b] >> (r[c] & 31));
			break;
		case OP_ROL:
			r[a] = rotl32(r[b], r[c]);
			break;
		case OP_ADDI:
			r[a] += (u32)x;
			break;
		case OP_SLT:
			r[a] = (i32)r[b] < (i32)r[c];
			break;
		case OP_SLTU:
			r[a] = r[b] < r[c];
			break;
		case OP_SEQ:
			r[a] = r[b] == r[c];
			break;
		case OP_LDW:
			r[a] = vmem[(r[b] + p[3]) & (VMEM_WORDS - 1)];
			break;
		case OP_STW:
			vmem[(r[b] + p[3]) & (VMEM_WORDS - 1)] = r[a];
			break;
		case OP_LDB:
			r[a] = vmemb[(r[b] + p[3]) & (VMEM_WORDS * 4 - 1)];
			break;
		case OP_LDBS:
			r[a] = (u32)(i32)(i8)vmemb[(r[b] + p[3]) & (VMEM_WORDS * 4 - 1)];
			break;
		case OP_STB:
			vmemb[(r[b] + p[3]) & (VMEM_WORDS * 4 - 1)] = (u8)r[a];
			break;
		case OP_JMP:
			pc = (u16)x;
			break;
		case OP_JZ:
			if (r[a] == 0)
				pc = (u16)x;
			break;
		case OP_JNZ:
			if (r[a] != 0)
				pc = (u16)x;
			break;
		case OP_CALL:
			vstack[sp++ & (VSTACK - 1)] = pc;
			pc = (u16)x;
			break;
		case OP_RET:
			pc = vstack[--sp & (VSTACK - 1)];
			break;
		case OP_PUSH:
			vstack[sp++ & (VSTACK - 1)] = r[a];
			break;
		case OP_POP:
			r[a] = vstack[--sp & (VSTACK - 1)];
			break;
		case OP_NOT:
			r[a] = ~r[b];
			break;
		default:
			return 0;
		}
	}
}

/* ---- two-pass assembler ---- */

static void E(u32 op, u32 a, u32 b, u32 c)
{
	u8 *p = prog + plen * 4;
	p[0] = (u8)op;
	p[1] = (u8)a;
	p[2] = (u8)b;
	p[3] = (u8)c;
	plen++;
}

static void EX(u32 op, u32 a, u32 x)
{
	u8 *p = prog + plen * 4;
	p[0] = (u8)op;
	p[1] = (u8)a;
	p[2] = (u8)x;
	p[3] = (u8)(x >> 8);
	plen++;
}

#define L(n) (lab[n] = plen)

enum { P_SIEVE, P_COLLATZ, P_FIB, P_HASH, /* entry labels */
       L_S_OUTER = 10, L_S_INNER, L_S_NEXT, L_S_DONE, L_S_COUNT, L_S_CLR,
       L_C_N = 20, L_C_LOOP, L_C_EVEN, L_C_END,
       L_F_FIB = 25, L_F_REC,
       L_H_FILL = 30, L_H_FNV, L_H_MIX };

static void assemble(void)
{
	plen = 0;

	/* Sieve of Eratosthenes on bytes 0..r2-1.  In: r2 = N.
	 * Out: r8 = number of primes below N. */
	L(P_SIEVE);
	EX(OP_LI, 1, 0);
	EX(OP_LI, 7, 1);
	L(L_S_CLR);			/* clear flags */
	E(OP_STB, 0, 1, 0);
	EX(OP_ADDI, 1, 1);
	E(OP_SLTU, 6, 1, 2);
	EX(OP_JNZ, 6, lab[L_S_CLR]);
	EX(OP_LI, 1, 2);
	L(L_S_OUTER);
	E(OP_MUL, 3, 1, 1);		/* r3 = i*i */
	E(OP_SLTU, 6, 3, 2);
	EX(OP_JZ, 6, lab[L_S_DONE]);
	E(OP_LDB, 4, 1, 0);
	EX(OP_JNZ, 4, lab[L_S_NEXT]);
	L(L_S_INNER);
	E(OP_SLTU, 6, 3, 2);
	EX(OP_JZ, 6, lab[L_S_NEXT]);
	E(OP_STB, 7, 3, 0);
	E(OP_ADD, 3, 3, 1);
	EX(OP_JMP, 0, lab[L_S_INNER]);
	L(L_S_NEXT);
	EX(OP_ADDI, 1, 1);
	EX(OP_JMP, 0, lab[L_S_OUTER]);
	L(L_S_DONE);
	EX(OP_LI, 1, 2);
	EX(OP_LI, 8, 0);
	L(L_S_COUNT);
	E(OP_LDB, 4, 1, 0);
	E(OP_SEQ, 4, 4, 0);
	E(OP_ADD, 8, 8, 4);
	EX(OP_ADDI, 1, 1);
	E(OP_SLTU, 6, 1, 2);
	EX(OP_JNZ, 6, lab[L_S_COUNT]);
	E(OP_HALT, 0, 0, 0);

	/* Collatz: r8 = sum over n in [1, r2] of steps to reach 1. */
	L(P_COLLATZ);
	EX(OP_LI, 1, 1);
	EX(OP_LI, 8, 0);
	EX(OP_LI, 9, 1);
	EX(OP_LI, 10, 3);
	L(L_C_N);
	E(OP_MOV, 3, 1, 0);
	L(L_C_LOOP);
	E(OP_SEQ, 4, 3, 9);
	EX(OP_JNZ, 4, lab[L_C_END]);
	EX(OP_ADDI, 8, 1);
	E(OP_AND, 5, 3, 9);
	EX(OP_JZ, 5, lab[L_C_EVEN]);
	E(OP_MUL, 3, 3, 10);
	EX(OP_ADDI, 3, 1);
	EX(OP_JMP, 0, lab[L_C_LOOP]);
	L(L_C_EVEN);
	E(OP_SHR, 3, 3, 9);
	EX(OP_JMP, 0, lab[L_C_LOOP]);
	L(L_C_END);
	EX(OP_ADDI, 1, 1);
	E(OP_SLTU, 4, 2, 1);
	EX(OP_JZ, 4, lab[L_C_N]);
	E(OP_HALT, 0, 0, 0);

	/* Recursive Fibonacci: r2 = fib(r1); fib preserves r1. */
	L(P_FIB);
	EX(OP_LI, 11, 2);
	EX(OP_CALL, 0, lab[L_F_FIB]);
	E(OP_HALT, 0, 0, 0);
	L(L_F_FIB);
	E(OP_SLTU, 3, 1, 11);
	EX(OP_JZ, 3, lab[L_F_REC]);
	E(OP_MOV, 2, 1, 0);
	E(OP_RET, 0, 0, 0);
	L(L_F_REC);
	E(OP_PUSH, 1, 0, 0);
	EX(OP_ADDI, 1, (u32)-1);
	EX(OP_CALL, 0, lab[L_F_FIB]);
	E(OP_PUSH, 2, 0, 0);
	EX(OP_ADDI, 1, (u32)-1);
	EX(OP_CALL, 0, lab[L_F_FIB]);
	E(OP_POP, 3, 0, 0);
	E(OP_ADD, 2, 2, 3);
	E(OP_POP, 1, 0, 0);
	E(OP_RET, 0, 0, 0);

	/* Memory hash.  In: r5 = seed.  Out: r7 = FNV of bytes, r13 = mix. */
	L(P_HASH);
	EX(OP_LI, 1, 0);
	EX(OP_LI, 2, 4096);
	EX(OP_LI, 3, 0x660D);
	EX(OP_LUI, 3, 0x0019);		/* 1664525 */
	EX(OP_LI, 4, 0xF35F);		/* sign-extends ... */
	EX(OP_LUI, 4, 0x3C6E);		/* ... 1013904223 */
	L(L_H_FILL);
	E(OP_MUL, 5, 5, 3);
	E(OP_ADD, 5, 5, 4);
	E(OP_STW, 5, 1, 0);
	EX(OP_ADDI, 1, 1);
	E(OP_SLTU, 6, 1, 2);
	EX(OP_JNZ, 6, lab[L_H_FILL]);
	EX(OP_LI, 1, 0);
	EX(OP_LI, 2, 16384);
	EX(OP_LI, 7, 0x9DC5);
	EX(OP_LUI, 7, 0x811C);
	EX(OP_LI, 8, 0x0193);
	EX(OP_LUI, 8, 0x0100);
	L(L_H_FNV);
	E(OP_LDB, 9, 1, 0);
	E(OP_XOR, 7, 7, 9);
	E(OP_MUL, 7, 7, 8);
	E(OP_LDBS, 10, 1, 1);
	E(OP_ADD, 7, 7, 10);
	EX(OP_ADDI, 1, 2);
	E(OP_SLTU, 6, 1, 2);
	EX(OP_JNZ, 6, lab[L_H_FNV]);
	EX(OP_LI, 1, 0);
	EX(OP_LI, 2, 4096);
	EX(OP_LI, 11, 5);
	EX(OP_LI, 12, 3);
	EX(OP_LI, 13, 0);
	L(L_H_MIX);
	E(OP_LDW, 9, 1, 0);
	E(OP_MULHU, 10, 9, 3);
	E(OP_XOR, 13, 13, 10);
	E(OP_ROL, 13, 13, 11);
	E(OP_SAR, 10, 9, 12);
	E(OP_SUB, 13, 13, 10);
	E(OP_SHL, 10, 9, 11);
	E(OP_OR, 10, 10, 12);
	E(OP_DIVU, 14, 13, 10);
	E(OP_REMU, 15, 13, 10);
	E(OP_ADD, 13, 13, 14);
	E(OP_XOR, 13, 13, 15);
	E(OP_SLT, 10, 9, 0);
	E(OP_ADD, 13, 13, 10);
	E(OP_NOT, 10, 9, 0);
	E(OP_STW, 10, 1, 0);
	EX(OP_ADDI, 1, 1);
	E(OP_SLTU, 6, 1, 2);
	EX(OP_JNZ, 6, lab[L_H_MIX]);
	E(OP_HALT, 0, 0, 0);
}

static u32 collatz_c(u32 k)
{
	u32 n, total = 0;
	for (n = 1; n <= k; n++) {
		u32 v = n;
		while (v != 1) {
			v = (v & 1) ? 3 * v + 1 : v >> 1;
			total++;
		}
	}
	return total;
}

u32 phase_vm(u32 *fail)
{
	u32 h = 0x564d5f5fu, steps = 0, i, n;
	u32 r[16];

	assemble();	/* pass 1: collect labels */
	assemble();	/* pass 2: resolve them */

	for (i = 0; i < 2; i++) {
		memset(r, 0, sizeof r);
		r[2] = 20000 + i * 4000;
		n = vm_run(prog, lab[P_SIEVE], r);
		steps += n;
		h = mix32(h, r[8]);
		if (r[8] != (i ? 2668u : 2262u)) /* pi(20000), pi(24000) */
			*fail |= 16;
		if (!n)
			*fail |= 16;
	}

	memset(r, 0, sizeof r);
	r[2] = 1500;
	n = vm_run(prog, lab[P_COLLATZ], r);
	steps += n;
	if (!n || r[8] != collatz_c(1500))
		*fail |= 16;
	h = mix32(h, r[8]);

	memset(r, 0, sizeof r);
	r[1] = 22;
	n = vm_run(prog, lab[P_FIB], r);
	steps += n;
	if (!n || r[1] != 22 || r[2] != 17711)
		*fail |= 16;
	h = mix32(h, r[2]);

	for (i = 0; i < 4; i++) {
		memset(r, 0, sizeof r);
		r[5] = 0x2545F491u * (i + 1);
		n = vm_run(prog, lab[P_HASH], r);
		steps += n;
		if (!n)
			*fail |= 16;
		h = mix32(h, r[7]);
		h = mix32(h, r[13]);
	}
	h = mix32(h, steps);
	return h;
}
