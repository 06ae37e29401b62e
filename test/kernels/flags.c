/* flags.elf: popf and iret on IF, IOPL, AC, ID, NT and the arithmetic
   flags at CPL 0, 1 and 3 with IOPL 0, 1 and 3; pushf values; iret to an
   outer ring; single-step (TF).  See README.md. */
#include "rt.h"

/* ebx = the value to load; eax = eflags after, edx = eflags before */
SNIP(f_popf, "pushfl; popl %edx; pushl %ebx; popfl; pushfl; popl %eax");
SNIP(f_popfw, "pushfl; popl %edx; pushw %bx; popfw; pushfl; popl %eax");
SNIP(f_iret, "pushfl; popl %edx; pushl %ebx; xor %ecx, %ecx; mov %cs, %cx; pushl %ecx; pushl $1f; iret; 1: pushfl; popl %eax");
/* iret to ring 3 with eflags image ebx */
CODE(r3_pushf, "pushfl; popl %eax; int $0x80");
SNIP(f_iret_out, "pushfl; popl %edx; pushl $0x33; pushl $stack3_top - 0x40; pushl %ebx; pushl $0x2b; pushl $r3_pushf; iret");
/* TF: the trap comes after the instruction following the popf that set it */
SNIP(f_tf, "pushfl; orl $0x100, (%esp); popfl; nop; nop");
SNIP(f_tf_int, "pushfl; orl $0x100, (%esp); popfl; int $0x51");
CODE(h_flags, "pushfl; popl %eax; int $0x80");

#define SET 0x00247ed7u          /* every defined flag but TF, RF, VM, VIF, VIP */
#define ALL 0xfffffeffu          /* every bit but TF */
#define CLR 0x00000002u

static void popf_iret(void)
{
	static const int cpls[] = { 0, 1, 3 }, iopls[] = { 0, 1, 3 };
	static const u32 vals[] = { SET, CLR };
	for (int c = 0; c < 3; c++)
		for (int i = 0; i < 3; i++)
			for (int f = 0; f < 2; f++) {
				run_eflags = 2 | (iopls[i] << 12) | (f << 9);
				for (int v = 0; v < 2; v++) {
					run_regs.ebx = vals[v];
					run_at(cpls[c], f_popf);
					printf("popf cpl%d iopl%d if%d <- %08x: ", cpls[c], iopls[i], f, vals[v]);
					outcome();
					printf(" before=%08x after=%08x\n", R.edx, R.eax);
					run_at(cpls[c], f_iret);
					printf("iret same-cpl cpl%d iopl%d if%d <- %08x: ", cpls[c], iopls[i], f, vals[v]);
					outcome();
					printf(" before=%08x after=%08x\n", R.edx, R.eax);
				}
				run_regs.ebx = ALL;
				run_at(cpls[c], f_popf);
				printf("popf cpl%d iopl%d if%d <- %08x: ", cpls[c], iopls[i], f, ALL);
				outcome();
				printf(" before=%08x after=%08x\n", R.edx, R.eax);
				run_regs.ebx = 0xfeff;
				run_at(cpls[c], f_popfw);
				printf("popfw cpl%d iopl%d if%d <- feff: ", cpls[c], iopls[i], f);
				outcome();
				printf(" before=%08x after=%08x\n", R.edx, R.eax);
			}
	/* iret to ring 3 from ring 0 and ring 1 */
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < 3; i += 2)
			for (int v = 0; v < 2; v++) {
				run_eflags = 2 | (iopls[i] << 12);
				run_regs.ebx = vals[v];
				run_at(c, f_iret_out);
				printf("iret cpl%d->cpl3 iopl%d <- %08x: ", c, iopls[i], vals[v]);
				outcome();
				printf(" before=%08x after=%08x cs=%04x\n", R.edx, R.eax, R.cs);
			}
	run_eflags = 2;
	run_regs.ebx = 0;
}

static void tf(void)
{
	static const int cpls[] = { 0, 1, 3 };
	for (int c = 0; c < 3; c++) {
		WRCR(0, RDCR(0));
		__asm__ volatile("mov %0, %%dr6" :: "r"(0xffff0ff0));
		run_at(cpls[c], f_tf);
		u32 dr6;
		__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
		printf("tf single step cpl%d: ", cpls[c]);
		outcome();
		printf(" eflags=%08x dr6.bs=%d\n", R.eflags & ~0x10000u, (dr6 >> 14) & 1);
	}
	/* TF and a software interrupt: the gate clears TF, the handler runs
	   without a #DB */
	set_gate(0x51, SEL_KCODE, (u32)h_flags, 0xe, 3);
	run_at(3, f_tf_int);
	printf("tf then int to ring0: ");
	outcome();
	printf(" handler eflags=%08x\n", R.eax);
	reset_gate(0x51);
}

/* alignment check: CR0.AM and EFLAGS.AC at CPL 3 */
SNIP(f_ac, "mov $stack3_top - 0x41, %ebx; mov (%ebx), %eax");
static void ac(void)
{
	static const int cpls[] = { 0, 1, 3 };
	for (int am = 0; am < 2; am++)
		for (int acf = 0; acf < 2; acf++)
			for (int c = 0; c < 3; c++) {
				/* AM=1 AC=1 CPL 3 must raise #AC(0) (SDM); QEMU does not
				   implement alignment checking: see README */
				if (am && acf && cpls[c] == 3)
					continue;
				WRCR(0, am ? RDCR(0) | 0x40000 : RDCR(0) & ~0x40000u);
				run_eflags = 2 | (acf << 18);
				run_at(cpls[c], f_ac);
				printf("misaligned load am=%d ac=%d cpl%d: ", am, acf, cpls[c]);
				outcome();
				printf("\n");
			}
	WRCR(0, RDCR(0) & ~0x40000u);
	run_eflags = 2;
}

void kmain(void)
{
	printf("flags.elf\n");
	popf_iret();
	tf();
	ac();
	printf("done\n");
}
