/* paging.elf: 32-bit paging (4 KiB pages, no PSE, no PAE): page-fault
   error codes for every P/W/U combination at CPL 0, 1 and 3 with CR0.WP 0
   and 1, CR2, accessed and dirty bits, PDE-level permissions, invlpg and
   CR3 reloads, implicit supervisor accesses, faults in the middle of rep
   stos.  See README.md. */
#include "rt.h"

#define P 1u
#define W 2u
#define U 4u
#define A 0x20u
#define D 0x40u
#define TVA 0x40000000u          /* test region: PDE 256 -> pt_t */
#define TVA2 0x40400000u         /* PDE 257 -> pt_t2 */

u32 pd[1024] __attribute__((section(".bss.pages"), aligned(4096)));
u32 pt_id[2][1024] __attribute__((section(".bss.pages"), aligned(4096)));
u32 pt_t[1024] __attribute__((section(".bss.pages"), aligned(4096)));
u32 pt_t2[1024] __attribute__((section(".bss.pages"), aligned(4096)));
u8 frames[8][4096] __attribute__((section(".bss.pages"), aligned(4096)));
extern char __sys_start[], __sys_end[];

static void invlpg(u32 va)
{
	__asm__ volatile("invlpg (%0)" :: "r"(va) : "memory");
}

static void flush(void)
{
	WRCR(3, RDCR(3));
}

static void setwp(int wp)
{
	u32 cr0 = RDCR(0);
	WRCR(0, wp ? cr0 | 0x10000 : cr0 & ~0x10000u);
}

static void paging_on(void)
{
	for (u32 i = 0; i < 2048; i++) {
		u32 a = i << 12;
		u32 f = P | W | U;
		if (a >= (u32)__sys_start && a < (u32)__sys_end)
			f = P | W;       /* GDT, IDT, TSS: supervisor only */
		pt_id[i >> 10][i & 1023] = a | f;
	}
	pd[0] = (u32)pt_id[0] | P | W | U;
	pd[1] = (u32)pt_id[1] | P | W | U;
	pd[TVA >> 22] = (u32)pt_t | P | W | U;
	pd[TVA2 >> 22] = (u32)pt_t2 | P | W | U;
	for (int i = 0; i < 8; i++) {
		frames[i][0x20] = 'A' + i;
		frames[i][0x800] = 0xc3;        /* ret */
	}
	WRCR(3, (u32)pd);
	WRCR(0, RDCR(0) | 0x80000000);
	printf("paging on: cr0=%08x\n", RDCR(0));
}

SNIP(t_rd, "mov (%ebx), %eax");
SNIP(t_wr, "movl $0x11223344, (%ebx)");
SNIP(t_fx, "call *%ebx");
SNIP(t_rd_wr, "mov (%ebx), %eax; movl $0x11223344, (%ebx)");
SNIP(t_push, "mov %ebx, %esp; push %eax");
SNIP(t_stos, "mov %ebx, %edi; mov $0x2000, %ecx; mov $0x5a, %al; cld; rep stosb");
SNIP(t_stosd, "mov %ebx, %edi; mov $0x800, %ecx; mov $0x5a5a5a5a, %eax; cld; rep stosl");
SNIP(t_movs, "mov %ebx, %esi; mov $0x400000, %edi; mov $0x2000, %ecx; cld; rep movsb");
SNIP(t_ldds, "mov $0x33, %eax; mov %eax, %ds; mov $0x2b, %ebx; lar %ebx, %ecx; setz %dl");

static void pf(void)
{
	printf(" cr2=");
	if (R.cr2 - TVA < 0x800000)
		printf("tva+%x", R.cr2 - TVA);
	else if (R.cr2 - (u32)gdt < 0x1000)
		printf("gdt+%x", R.cr2 - (u32)gdt);
	else
		printf("%08x", R.cr2);
}

static void result(void)
{
	outcome();
	if (R.vec == 14)
		pf();
}

static void ad(void)
{
	printf(" pte.a=%d pte.d=%d pde.a=%d", (pt_t[0] >> 5) & 1, (pt_t[0] >> 6) & 1, (pd[TVA >> 22] >> 5) & 1);
}

static void matrix(void)
{
	static const struct { const char *name; u32 f; } pte[] = {
		{ "not-present", 0 }, { "sup-ro", P }, { "sup-rw", P | W }, { "user-ro", P | U }, { "user-rw", P | W | U },
	};
	static const struct { const char *name; void (*fn)(void); u32 off; } acc[] = {
		{ "read", t_rd, 0x10 }, { "write", t_wr, 0x10 }, { "fetch", t_fx, 0x800 },
	};
	static const int cpls[] = { 0, 1, 3 };
	for (int wp = 0; wp < 2; wp++)
		for (u32 p = 0; p < 5; p++)
			for (u32 a = 0; a < 3; a++)
				for (int c = 0; c < 3; c++) {
					setwp(wp);
					pd[TVA >> 22] = (u32)pt_t | P | W | U;
					pt_t[0] = (u32)frames[0] | pte[p].f;
					invlpg(TVA);
					WRCR(2, 0);
					run_regs.ebx = TVA + acc[a].off;
					run_at(cpls[c], acc[a].fn);
					printf("%s cpl%d %s wp%d: ", acc[a].name, cpls[c], pte[p].name, wp);
					result();
					if (R.vec == VEC_DONE)
						ad();
					printf("\n");
				}
	setwp(0);
}

/* PDE permissions combine with PTE permissions */
static void pde_level(void)
{
	static const struct { const char *name; u32 pde, pte; } cfg[] = {
		{ "pde not-present", 0, P | W | U },
		{ "pde sup, pte user", P | W, P | W | U },
		{ "pde ro, pte rw", P | U, P | W | U },
		{ "pde user rw, pte sup", P | W | U, P | W },
		{ "pde ps=1 (ignored without cr4.pse)", P | W | U | 0x80, P | W | U },
	};
	static const struct { const char *name; void (*fn)(void); } acc[] = {
		{ "read", t_rd }, { "write", t_wr },
	};
	static const int cpls[] = { 0, 3 };
	for (int wp = 0; wp < 2; wp++)
		for (u32 k = 0; k < sizeof(cfg) / sizeof(cfg[0]); k++)
			for (u32 a = 0; a < 2; a++)
				for (int c = 0; c < 2; c++) {
					setwp(wp);
					pd[TVA2 >> 22] = (cfg[k].pde ? (u32)pt_t2 : 0) | cfg[k].pde;
					pt_t2[3] = (u32)frames[1] | cfg[k].pte;
					flush();
					WRCR(2, 0);
					run_regs.ebx = TVA2 + 0x3000 + 0x24;
					run_at(cpls[c], acc[a].fn);
					printf("%s cpl%d %s wp%d: ", acc[a].name, cpls[c], cfg[k].name, wp);
					result();
					if (R.vec == VEC_DONE)
						printf(" pde.a=%d pte.a=%d pte.d=%d", (pd[TVA2 >> 22] >> 5) & 1, (pt_t2[3] >> 5) & 1,
						       (pt_t2[3] >> 6) & 1);
					printf("\n");
				}
	pd[TVA2 >> 22] = (u32)pt_t2 | P | W | U;
	setwp(0);
}

static void accessed_dirty(void)
{
	pt_t[0] = (u32)frames[0] | P | W | U;
	invlpg(TVA);
	run_regs.ebx = TVA + 0x10;
	run_at(3, t_rd);
	printf("read: ");
	outcome();
	ad();
	printf("\n");
	/* the write goes through the entry cached by the read: D must still be set */
	run_at(3, t_wr);
	printf("then write without invlpg: ");
	outcome();
	ad();
	printf("\n");
	/* read+write in one run */
	pt_t[0] = (u32)frames[0] | P | W | U;
	invlpg(TVA);
	run_at(0, t_rd_wr);
	printf("read then write cpl0: ");
	outcome();
	ad();
	printf("\n");
	/* fetch sets A only */
	pt_t[0] = (u32)frames[0] | P | W | U;
	invlpg(TVA);
	run_regs.ebx = TVA + 0x800;
	run_at(3, t_fx);
	printf("fetch: ");
	outcome();
	ad();
	printf("\n");
	/* CPL 0 write to a read-only page with WP=0 sets D */
	setwp(0);
	pt_t[0] = (u32)frames[0] | P | U;
	invlpg(TVA);
	run_regs.ebx = TVA + 0x10;
	run_at(0, t_wr);
	printf("write cpl0 read-only wp0: ");
	outcome();
	ad();
	printf("\n");
	/* software clears A and D, invlpg, read again */
	pt_t[0] &= ~(A | D);
	invlpg(TVA);
	run_at(3, t_rd);
	printf("cleared a/d, invlpg, read: ");
	outcome();
	ad();
	printf("\n");
	/* pre-set A and D are left alone */
	pt_t[0] = (u32)frames[0] | P | W | U | A | D;
	invlpg(TVA);
	run_at(3, t_rd);
	printf("a/d preset, read: ");
	outcome();
	ad();
	printf(" pte low bits=%03x\n", pt_t[0] & 0xfff);
	/* ignored/available bits 9-11 are kept */
	pt_t[0] = (u32)frames[0] | P | W | U | 0xe00;
	invlpg(TVA);
	run_at(3, t_wr);
	printf("avl bits set, write: ");
	outcome();
	printf(" pte low bits=%03x\n", pt_t[0] & 0xfff);
}

static void tlb(void)
{
	run_regs.ebx = TVA + 0x20;
	pt_t[0] = (u32)frames[2] | P | W | U;
	invlpg(TVA);
	run_at(3, t_rd);
	printf("map frame C, read: ");
	outcome();
	printf(" byte=%c\n", R.eax & 0xff);
	pt_t[0] = (u32)frames[3] | P | W | U;
	invlpg(TVA);
	run_at(3, t_rd);
	printf("remap frame D, invlpg, read: ");
	outcome();
	printf(" byte=%c\n", R.eax & 0xff);
	pt_t[0] = (u32)frames[4] | P | W | U;
	flush();
	run_at(3, t_rd);
	printf("remap frame E, cr3 reload, read: ");
	outcome();
	printf(" byte=%c\n", R.eax & 0xff);
	/* not-present -> present needs no invalidation */
	pt_t[1] = 0;
	invlpg(TVA + 0x1000);
	run_regs.ebx = TVA + 0x1020;
	run_at(3, t_rd);
	printf("not-present page, read: ");
	result();
	printf("\n");
	pt_t[1] = (u32)frames[5] | P | W | U;
	run_at(3, t_rd);
	printf("made present (no invlpg), read: ");
	outcome();
	printf(" byte=%c\n", R.eax & 0xff);
	/* the same frame mapped twice: a write through one is seen through the other */
	pt_t[2] = (u32)frames[5] | P | W | U;
	invlpg(TVA + 0x2000);
	run_regs.ebx = TVA + 0x1020;
	run_at(3, t_wr);
	run_regs.ebx = TVA + 0x2020;
	run_at(3, t_rd);
	printf("alias write/read: ");
	outcome();
	printf(" eax=%08x\n", R.eax);
	/* paging off and on again: identity mapping still works */
	WRCR(0, RDCR(0) & ~0x80000000u);
	WRCR(0, RDCR(0) | 0x80000000u);
	run_at(3, t_rd);
	printf("paging off/on, read: ");
	outcome();
	printf(" eax=%08x\n", R.eax);
}

static void stacks_and_strings(void)
{
	/* user stack on a read-only page / not-present page */
	pt_t[4] = (u32)frames[6] | P | U;
	pt_t[5] = 0;
	invlpg(TVA + 0x4000);
	invlpg(TVA + 0x5000);
	run_regs.ebx = TVA + 0x4100;
	run_at(3, t_push);
	printf("push to read-only user page cpl3: ");
	result();
	printf(" esp=%08x\n", R.esp);
	run_regs.ebx = TVA + 0x5100;
	run_at(3, t_push);
	printf("push to not-present page cpl3: ");
	result();
	printf(" esp=%08x\n", R.esp);
	setwp(1);
	run_regs.ebx = TVA + 0x4100;
	run_at(1, t_push);
	printf("push to read-only page cpl1 wp1: ");
	result();
	printf(" esp=%08x\n", R.esp);
	setwp(0);
	run_at(1, t_push);
	printf("push to read-only page cpl1 wp0: ");
	result();
	printf(" esp=%08x\n", R.esp);

	/* rep stos running into a not-present page: stops at the page boundary */
	pt_t[6] = (u32)frames[7] | P | W | U;
	pt_t[7] = 0;
	invlpg(TVA + 0x6000);
	invlpg(TVA + 0x7000);
	run_regs.ebx = TVA + 0x6000;
	run_at(3, t_stos);
	printf("rep stosb into not-present page: ");
	result();
	printf(" ecx=%x edi=tva+%x\n", R.ecx, R.edi - TVA);
	run_regs.ebx = TVA + 0x6000 + 0x10;
	run_at(3, t_stosd);
	printf("rep stosl into not-present page: ");
	result();
	printf(" ecx=%x edi=tva+%x\n", R.ecx, R.edi - TVA);
	/* rep movs reading from a not-present page */
	run_regs.ebx = TVA + 0x6000;
	run_at(0, t_movs);
	printf("rep movsb from not-present page: ");
	result();
	printf(" ecx=%x esi=tva+%x edi=%08x\n", R.ecx, R.esi - TVA, R.edi);
	run_regs.ebx = 0;
}

static void supervisor_tables(void)
{
	/* the GDT/IDT/TSS page is supervisor-only: implicit accesses from CPL 3
	   (segment loads, lar, interrupt delivery) are supervisor accesses */
	run_at(3, t_ldds);
	printf("cpl3 segment load and lar, gdt on supervisor page: ");
	outcome();
	printf(" lar=%08x zf=%d\n", R.ecx & 0x00f0ff00, R.edx & 1);
	run_regs.ebx = (u32)gdt + 8;
	run_at(3, t_rd);
	printf("cpl3 explicit read of the gdt: ");
	result();
	printf("\n");
	run_at(1, t_rd);
	printf("cpl1 explicit read of the gdt: ");
	result();
	printf("\n");
	run_regs.ebx = 0;
}

void kmain(void)
{
	printf("paging.elf\n");
	paging_on();
	matrix();
	pde_level();
	accessed_dirty();
	tlb();
	stacks_and_strings();
	supervisor_tables();
	WRCR(0, RDCR(0) & ~0x80000000u);
	printf("done\n");
}
