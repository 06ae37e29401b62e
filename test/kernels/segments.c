/* segments.elf: segment-register loads and their faults, far jmp/call/ret
   (with privilege change on ret), a call gate, conforming code, segment
   bases, expand-down loads, accessed bits, lar/lsl/verr/verw on every
   descriptor kind.  Data-segment limit and rights checks on memory
   accesses are not tested (QEMU does not enforce them: see README). */
#include "rt.h"

u8 segbuf[0x1000];
u32 farptr[2];
u32 cg[8];

/* test descriptors */
#define S_NP     0x40   /* data DPL0 not present */
#define S_FRESH  0x48   /* data DPL3, accessed bit clear */
#define S_RO     0x50   /* read-only data DPL3 */
#define S_XO     0x58   /* execute-only code DPL3 */
#define S_RC0    0x60   /* readable code DPL0 */
#define S_CONF   0x68   /* readable conforming code DPL0 */
#define S_XCONF  0x70   /* execute-only conforming code DPL0 */
#define S_EXPD   0x78   /* expand-down data DPL3, limit 0xfff */
#define S_BASE   0x80   /* data DPL3, base segbuf, limit 0xfff */
#define S_D1     0x88   /* data DPL1 */
#define S_CNP    0x90   /* code DPL3 not present */
#define S_CG3    0x98   /* call gate DPL3 -> KCODE:cg_h, 2 params */
#define S_CG0    0xa0   /* call gate DPL0 */
#define S_CGNP   0xa8   /* call gate DPL3 not present */
#define S_CBASE  0xb0   /* code DPL3, base 0x1000 */
#define S_CLIM   0xb8   /* code DPL3, limit 0xffff byte granular */
#define S_LDT    0xc0   /* an LDT descriptor */
#define S_SYS    0xc8   /* any system type, see lar_lsl() */
#define S_G1     0xd0   /* data DPL3, limit 1 page granular */
#define S_BYTE   0xd8   /* data DPL3, limit 0x1234 byte granular */
#define S_CGJ    0xe0   /* call gate DPL3 -> UCODE (same privilege) */

extern void cg_h(void), jt(void), jt_base(void), jc(void);

static void descriptors(void)
{
	gdt[S_NP >> 3] = mkseg(0, 0xfffff, 0x13, 0xc);
	gdt[S_FRESH >> 3] = mkseg(0, 0xfffff, 0xf2, 0xc);
	gdt[S_RO >> 3] = mkseg(0, 0xfffff, 0xf0, 0xc);
	gdt[S_XO >> 3] = mkseg(0, 0xfffff, 0xf8, 0xc);
	gdt[S_RC0 >> 3] = mkseg(0, 0xfffff, 0x9a, 0xc);
	gdt[S_CONF >> 3] = mkseg(0, 0xfffff, 0x9e, 0xc);
	gdt[S_XCONF >> 3] = mkseg(0, 0xfffff, 0x9c, 0xc);
	gdt[S_EXPD >> 3] = mkseg(0, 0xfff, 0xf6, 0x4);
	gdt[S_BASE >> 3] = mkseg((u32)segbuf, 0xfff, 0xf2, 0x4);
	gdt[S_D1 >> 3] = mkseg(0, 0xfffff, 0xb2, 0xc);
	gdt[S_CNP >> 3] = mkseg(0, 0xfffff, 0x7a, 0xc);
	gdt[S_CBASE >> 3] = mkseg(0x1000, 0xfffff, 0xfa, 0xc);
	gdt[S_CLIM >> 3] = mkseg(0, 0xffff, 0xfa, 0x4);
	gdt[S_LDT >> 3] = mkseg((u32)segbuf, 0xff, 0x82, 0);
	gdt[S_G1 >> 3] = mkseg(0, 1, 0xf2, 0xc);
	gdt[S_BYTE >> 3] = mkseg(0, 0x1234, 0xf2, 0x4);
	/* call gates: offset 15:0, selector, param count, type, offset 31:16 */
	u32 o = (u32)cg_h;
	gdt[S_CG3 >> 3] = ((u64)((o & 0xffff0000) | 0xec00 | 2) << 32) | (SEL_KCODE << 16) | (o & 0xffff);
	gdt[S_CG0 >> 3] = ((u64)((o & 0xffff0000) | 0x8c00 | 2) << 32) | (SEL_KCODE << 16) | (o & 0xffff);
	gdt[S_CGNP >> 3] = ((u64)((o & 0xffff0000) | 0x6c00 | 2) << 32) | (SEL_KCODE << 16) | (o & 0xffff);
	o = (u32)jt;
	gdt[S_CGJ >> 3] = ((u64)((o & 0xffff0000) | 0xec00) << 32) | (SEL_UCODE << 16) | (o & 0xffff);
	for (int i = 0; i < 0x1000; i++)
		segbuf[i] = (u8)i;
}

/* loads: ebx = selector; eax = the register read back */
SNIP(s_ds, "mov %ebx, %ds; mov %ds, %eax");
SNIP(s_es, "mov %ebx, %es; mov %es, %eax");
SNIP(s_fs, "mov %ebx, %fs; mov %fs, %eax");
SNIP(s_gs, "mov %ebx, %gs; mov %gs, %eax");
SNIP(s_ss, "mov %ebx, %ss; mov %ss, %eax");
SNIP(s_popds, "push %ebx; pop %ds; mov %ds, %eax");
SNIP(s_popss, "push %ebx; pop %ss; mov %ss, %eax");
SNIP(s_popfs, "push %ebx; pop %fs; mov %fs, %eax");
SNIP(s_lds, "mov %ebx, farptr+4; movl $0x1234, farptr; lds farptr, %ecx; mov %ds, %eax");
SNIP(s_lgs, "mov %ebx, farptr+4; movl $0x1234, farptr; lgs farptr, %ecx; mov %gs, %eax");
SNIP(s_lss, "mov %ebx, farptr+4; movl $stack3_top - 0x200, farptr; mov %esp, %edx; lss farptr, %ecx;"
	"mov %esp, %ecx; mov %ss, %eax; mov %edx, %esp");
/* base: read through a segment with a base */
SNIP(s_base_ds, "mov %ebx, %ds; mov 0x10, %eax");
SNIP(s_base_fs, "mov %ebx, %fs; mov %fs:0x20, %eax");
SNIP(s_base_gs, "mov %ebx, %gs; mov %gs:0x31, %eax");
SNIP(s_base_es, "mov %ebx, %es; mov $0x40, %edi; mov %es:(%edi), %eax");

static const struct { const char *name; void (*fn)(void); } regs[] = {
	{ "ds", s_ds }, { "es", s_es }, { "fs", s_fs }, { "gs", s_gs }, { "ss", s_ss },
};

static void load(const char *what, void (*fn)(void), int cpl, u32 sel)
{
	run_regs.ebx = sel;
	run_at(cpl, fn);
	printf("%s %04x cpl%d: ", what, sel, cpl);
	outcome();
	if (R.vec == VEC_DONE)
		printf(" sel=%04x", R.eax & 0xffff);
	printf("\n");
}

static void loads(void)
{
	static const struct { u32 sel; int cpl; } c[] = {
		{ 0x0000, 3 }, { 0x0003, 3 }, { 0x0000, 0 }, { 0x0002, 1 },   /* null selectors */
		{ 0x03fb, 3 }, { 0x03f8, 0 }, { 0x000c, 0 }, { 0x000f, 3 },   /* beyond the GDT; the (empty) LDT */
		{ S_NP, 0 },                                                  /* not present */
		{ 0x0010, 3 }, { 0x0010, 1 }, { 0x0013, 0 }, { 0x0011, 0 },   /* DPL 0 data */
		{ 0x0021, 3 }, { 0x0021, 1 }, { 0x0023, 1 }, { 0x0021, 0 },   /* DPL 1 data */
		{ 0x0033, 0 }, { 0x0030, 3 }, { 0x0031, 1 },                  /* DPL 3 data */
		{ S_RO | 3, 3 }, { S_XO | 3, 3 }, { 0x002b, 3 }, { 0x002b, 0 }, /* read-only data; code */
		{ S_RC0 | 3, 3 }, { S_RC0, 0 }, { S_CONF | 3, 3 }, { S_CONF | 1, 1 }, { S_XCONF | 3, 3 },
		{ 0x0008, 0 }, { 0x0019, 1 },
		{ SEL_TSS, 0 }, { S_LDT, 0 }, { S_CG3 | 3, 3 },               /* system descriptors */
		{ S_EXPD | 3, 3 },                                            /* expand-down */
	};
	for (u32 r = 0; r < 5; r++)
		for (u32 i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
			/* fs and gs: only a few rows, they follow the ds rules */
			if ((r == 2 || r == 3) && i % 4 != 0)
				continue;
			load(regs[r].name, regs[r].fn, c[i].cpl, c[i].sel);
		}
	load("pop ds", s_popds, 3, 0x0010);
	load("pop ds", s_popds, 3, 0x0033);
	load("pop ds", s_popds, 0, S_NP);
	load("pop fs", s_popfs, 3, S_RO | 3);
	load("pop ss", s_popss, 3, 0x0000);
	load("pop ss", s_popss, 3, S_RO | 3);
	load("pop ss", s_popss, 0, S_NP);
	load("lds", s_lds, 3, 0x0033);
	load("lds", s_lds, 3, 0x0010);
	load("lds", s_lds, 0, S_NP);
	load("lgs", s_lgs, 3, S_XO | 3);
	run_regs.ebx = 0x33;
	run_at(3, s_lss);
	printf("lss 0033 cpl3: ");
	outcome();
	printf(" ss=%04x esp=", R.eax & 0xffff);
	pstack(R.ecx);
	printf("\n");
	load("lss", s_lss, 3, 0x0010);
	load("lss", s_lss, 3, S_RO | 3);

	/* the accessed bit is set by a load */
	static const u32 fresh[] = { S_FRESH | 3, S_EXPD | 3 };
	for (int i = 0; i < 2; i++) {
		gdt[fresh[i] >> 3] &= ~(1ull << 40);
		u32 before = (gdt[fresh[i] >> 3] >> 40) & 1;
		load("ds (fresh)", s_ds, 3, fresh[i]);
		printf("  accessed before=%d after=%d\n", before, (u32)(gdt[fresh[i] >> 3] >> 40) & 1);
		gdt[fresh[i] >> 3] &= ~(1ull << 40);
		load("ss (fresh)", s_ss, 3, fresh[i]);
		printf("  accessed before=%d after=%d\n", before, (u32)(gdt[fresh[i] >> 3] >> 40) & 1);
	}
	/* a failed load does not set it */
	gdt[S_NP >> 3] &= ~(1ull << 40);
	load("ds (not present)", s_ds, 0, S_NP);
	printf("  accessed after=%d\n", (u32)(gdt[S_NP >> 3] >> 40) & 1);

	/* segment bases */
	static const struct { const char *name; void (*fn)(void); } b[] = {
		{ "ds:0x10", s_base_ds }, { "fs:0x20", s_base_fs }, { "gs:0x31", s_base_gs }, { "es:[edi=0x40]", s_base_es },
	};
	for (int i = 0; i < 4; i++) {
		run_regs.ebx = S_BASE | 3;
		run_at(3, b[i].fn);
		printf("read %s with base segbuf: ", b[i].name);
		outcome();
		printf(" eax=%08x\n", R.eax);
	}
	run_regs.ebx = 0;
}

/* far transfers: farptr = { offset, selector(ebx) } */
CODE(jt, "mov %cs, %eax; int $0x80");
CODE(jt_base, "call 1f; 1: pop %eax; mov %cs, %ecx; int $0x80");
CODE(jc, "mov %esp, %edi; mov (%esp), %eax; mov 4(%esp), %ecx; int $0x80");
SNIP(f_ljmp, "mov %ebx, farptr+4; movl $jt, farptr; ljmp *farptr");
SNIP(f_ljmp_base, "mov %ebx, farptr+4; movl $jt_base - 0x1000, farptr; ljmp *farptr");
SNIP(f_ljmp_lim, "mov %ebx, farptr+4; movl $0x10000, farptr; ljmp *farptr");
SNIP(f_lcall, "mov %ebx, farptr+4; movl $jc, farptr; mov %esp, %esi; lcall *farptr; 1:");
CODE(r3_segs, "mov %ds, %eax; mov %es, %ebx; mov %fs, %ecx; mov %gs, %edx; mov %esp, %esi; mov %ss, %edi; int $0x80");
SNIP(f_lret_out, "mov $0x10, %eax; mov %eax, %ds; mov $0x33, %eax; mov %eax, %es; mov $0x21, %eax; mov %eax, %fs;"
	"pushl $0x33; pushl $stack3_top - 0x40; pushl $0x2b; pushl $r3_segs; lret");
SNIP(f_lret_out8, "pushl $0x33; pushl $stack3_top - 0x40; pushl $0xaaaa; pushl $0xbbbb; pushl $0x2b; pushl $r3_segs; lret $8");
SNIP(f_lret_1to3, "pushl $0x33; pushl $stack3_top - 0x40; pushl $0x2b; pushl $r3_segs; lret");
SNIP(f_lret_in, "pushl $0x08; pushl $jt; lret");
SNIP(f_lret_same, "pushl %cs; pushl $jt; lret");
SNIP(f_lret_ssrpl, "pushl $0x30; pushl $stack3_top - 0x40; pushl $0x2b; pushl $r3_segs; lret");
/* call gate: two parameters copied to the ring 0 stack */
CODE(cg_h, "mov %esp, %eax; mov (%esp), %ebx; mov 4(%esp), %ecx; mov 8(%esp), %edx; mov 12(%esp), %esi;"
	"mov 16(%esp), %edi; mov 20(%esp), %ebp; int $0x80");
SNIP(f_cg, "pushl $0x1111; pushl $0x2222; mov %esp, caller_esp; lcall $0x9b, $0; 1:");
SNIP(f_cg0, "lcall $0xa3, $0");
SNIP(f_cgnp, "lcall $0xab, $0");
SNIP(f_cgjmp, "ljmp $0x9b, $0");
SNIP(f_cgsame, "mov %esp, caller_esp; lcall $0xe3, $0");

static void far(void)
{
	static const struct { u32 sel; int cpl; } j[] = {
		{ 0x0008, 0 }, { 0x000b, 0 }, { 0x002b, 0 }, { 0x002b, 3 }, { 0x0019, 1 }, { 0x0019, 3 },
		{ S_RC0 | 3, 3 }, { S_CONF | 3, 3 }, { S_CONF, 3 }, { S_CONF | 1, 1 }, { S_XCONF | 3, 3 },
		{ S_XO | 3, 3 }, { S_CNP | 3, 3 }, { 0x0033, 3 }, { 0x0000, 3 }, { 0x03fb, 3 }, { SEL_TSS, 0 },
	};
	for (u32 i = 0; i < sizeof(j) / sizeof(j[0]); i++) {
		run_regs.ebx = j[i].sel;
		run_at(j[i].cpl, f_ljmp);
		printf("ljmp %04x cpl%d: ", j[i].sel, j[i].cpl);
		outcome();
		if (R.vec == VEC_DONE)
			printf(" cs=%04x", R.eax & 0xffff);
		printf("\n");
	}
	run_regs.ebx = S_CBASE | 3;
	run_at(3, f_ljmp_base);
	printf("ljmp to code segment with base 0x1000: ");
	outcome();
	printf(" cs=%04x call/pop offset=jt_base-0x1000+%x frame eip=jt_base-0x1000+%x\n", R.ecx & 0xffff,
	       R.eax - ((u32)jt_base - 0x1000), R.eip - ((u32)jt_base - 0x1000));
	run_regs.ebx = S_CLIM | 3;
	run_at(3, f_ljmp_lim);
	printf("ljmp beyond the code segment limit: ");
	outcome();
	printf("\n");

	run_regs.ebx = 0x2b;
	run_at(3, f_lcall);
	printf("lcall same privilege cpl3: ");
	outcome();
	printf(" pushed=%x ret=+%x cs=%04x\n", R.esi - R.edi, R.eax - (u32)f_lcall, R.ecx & 0xffff);
	run_regs.ebx = S_CONF;
	run_at(3, f_lcall);
	printf("lcall conforming dpl0 from cpl3: ");
	outcome();
	printf(" pushed=%x ret=+%x cs=%04x now cs=%04x\n", R.esi - R.edi, R.eax - (u32)f_lcall, R.ecx & 0xffff, R.cs);
	run_regs.ebx = 0x08;
	run_at(3, f_lcall);
	printf("lcall dpl0 code from cpl3: ");
	outcome();
	printf("\n");
	run_regs.ebx = 0;

	run_at(0, f_lret_out);
	printf("lret cpl0->cpl3 (ds dpl0, es dpl3, fs dpl1): ");
	outcome();
	printf(" cs=%04x ds=%04x es=%04x fs=%04x ss=%04x esp=", R.cs, R.eax & 0xffff, R.ebx & 0xffff, R.ecx & 0xffff,
	       R.edi & 0xffff);
	pstack(R.esi);
	printf("\n");
	run_at(0, f_lret_out8);
	printf("lret $8 cpl0->cpl3: ");
	outcome();
	printf(" esp=");
	pstack(R.esi);
	printf("\n");
	run_at(1, f_lret_1to3);
	printf("lret cpl1->cpl3: ");
	outcome();
	printf(" cs=%04x ds=%04x ss=%04x\n", R.cs, R.eax & 0xffff, R.edi & 0xffff);
	chk("lret cpl3->cpl0", 3, f_lret_in);
	run_at(3, f_lret_same);
	printf("lret same privilege: ");
	outcome();
	printf(" cs=%04x\n", R.eax & 0xffff);
	chk("lret to cpl3 with ss rpl0", 0, f_lret_ssrpl);

	run_at(3, f_cg);
	printf("call gate cpl3->cpl0 (2 params): ");
	outcome();
	if (R.vec == VEC_DONE) {
		printf(" handler cs=%04x ss=%04x esp=", R.cs, R.ss);
		pstack(R.eax);
		printf(" | eip=+%x cs=%04x p0=%x p1=%x esp=caller+%x ss=%04x", R.ebx - (u32)f_cg, R.ecx & 0xffff, R.edx,
		       R.esi, R.edi - caller_esp, R.ebp & 0xffff);
	}
	printf("\n");
	chk("call gate dpl0 from cpl3", 3, f_cg0);
	chk("call gate not present", 3, f_cgnp);
	chk("ljmp through call gate to ring 0 from cpl3", 3, f_cgjmp);
	run_at(3, f_cgsame);
	printf("call gate to same privilege (0 params): ");
	outcome();
	printf(" cs=%04x\n", R.eax & 0xffff);
}

SNIP(l_lar, "mov $0xdeadbeef, %eax; lar %bx, %eax; setz %cl");
SNIP(l_lsl, "mov $0xdeadbeef, %eax; lsl %bx, %eax; setz %cl");
SNIP(l_verr, "verr %bx; setz %cl");
SNIP(l_verw, "verw %bx; setz %cl");

static void lv(u32 sel, int cpl)
{
	run_regs.ebx = sel;
	run_at(cpl, l_lar);
	printf("lar %04x cpl%d: zf=%d eax=%08x\n", sel, cpl, R.ecx & 1, R.ecx & 1 ? R.eax & 0x00f0ff00 : R.eax);
	run_at(cpl, l_lsl);
	printf("lsl %04x cpl%d: zf=%d eax=%08x\n", sel, cpl, R.ecx & 1, R.eax);
	run_at(cpl, l_verr);
	printf("verr %04x cpl%d: zf=%d\n", sel, cpl, R.ecx & 1);
	run_at(cpl, l_verw);
	printf("verw %04x cpl%d: zf=%d\n", sel, cpl, R.ecx & 1);
}

static void lar_lsl(void)
{
	/* every system descriptor type, DPL 0, at CPL 0 (lar/lsl only) */
	for (u32 t = 0; t < 16; t++) {
		gdt[S_SYS >> 3] = mkseg(0x12345, 0xabcde, 0x80 | t, 0);
		run_regs.ebx = S_SYS;
		run_at(0, l_lar);
		printf("lar system type %x: zf=%d eax=%08x\n", t, R.ecx & 1, R.ecx & 1 ? R.eax & 0x00f0ff00 : R.eax);
		run_at(0, l_lsl);
		printf("lsl system type %x: zf=%d eax=%08x\n", t, R.ecx & 1, R.eax);
	}
	gdt[S_SYS >> 3] = 0;
	static const struct { u32 sel; int cpl; } c[] = {
		{ S_NP, 0 }, { S_RO | 3, 3 }, { S_XO | 3, 3 }, { S_RC0 | 3, 3 }, { S_RC0, 0 }, { S_CONF | 3, 3 },
		{ S_XCONF | 3, 3 }, { S_EXPD | 3, 3 }, { S_BASE | 3, 3 }, { S_D1 | 3, 0 }, { S_D1 | 1, 1 },
		{ S_D1 | 1, 3 }, { S_G1 | 3, 3 }, { S_BYTE | 3, 3 }, { S_CG3 | 3, 3 }, { S_CG0, 3 }, { S_LDT, 0 },
		{ 0x0004, 0 },
	};
	for (u32 i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		lv(c[i].sel, c[i].cpl);
	run_regs.ebx = 0;
}

void kmain(void)
{
	printf("segments.elf\n");
	descriptors();
	loads();
	far();
	lar_lsl();
	printf("done\n");
}
