/* privileged.elf: each privileged instruction at CPL 0, 1 and 3; the
   instructions any CPL may use, with their results; IOPL and the TSS I/O
   bitmap; rdtsc and CR4.TSD.  See README.md. */
#include "rt.h"

u32 saved_cr0, saved_cr2, saved_cr3, saved_cr4, saved_dr7;
u8 gdtr_copy[6], idtr_copy[6], store[8];

/* Instructions only CPL 0 may execute: #GP(0) at CPL 1 and 3. */
SNIP(p_lgdt, "lgdt gdtr_copy");
SNIP(p_lidt, "lidt idtr_copy");
SNIP(p_lldt, "xor %eax, %eax; lldt %ax");
SNIP(p_ltr, "mov $0x38, %eax; ltr %ax");
SNIP(p_rdcr0, "mov %cr0, %eax");
SNIP(p_wrcr0, "mov saved_cr0, %eax; mov %eax, %cr0");
SNIP(p_rdcr2, "mov %cr2, %eax");
SNIP(p_wrcr2, "mov saved_cr2, %eax; mov %eax, %cr2");
SNIP(p_rdcr3, "mov %cr3, %eax");
SNIP(p_wrcr3, "mov saved_cr3, %eax; mov %eax, %cr3");
SNIP(p_rdcr4, "mov %cr4, %eax");
SNIP(p_wrcr4, "mov saved_cr4, %eax; mov %eax, %cr4");
SNIP(p_rddr7, "mov %dr7, %eax");
SNIP(p_wrdr7, "mov saved_dr7, %eax; mov %eax, %dr7");
SNIP(p_clts, "clts");
SNIP(p_hlt, "hlt");
SNIP(p_invd, "invd");
SNIP(p_wbinvd, "wbinvd");
SNIP(p_invlpg, "invlpg store");
SNIP(p_rdmsr, "mov $0x174, %ecx; rdmsr");
SNIP(p_wrmsr, "mov $0x174, %ecx; xor %eax, %eax; xor %edx, %edx; wrmsr");
SNIP(p_lmsw, "mov saved_cr0, %eax; lmsw %ax");
SNIP(p_cli, "cli");
SNIP(p_sti, "sti");
SNIP(p_sysenter, "sysenter");
SNIP(p_sysexit, "sysexit");

static const struct { const char *name; void (*fn)(void); int cpl0; } priv[] = {
	{ "lgdt", p_lgdt, 1 }, { "lidt", p_lidt, 1 }, { "lldt 0", p_lldt, 1 },
	{ "ltr (busy tss)", p_ltr, 1 },
	{ "mov cr0->eax", p_rdcr0, 1 }, { "mov eax->cr0", p_wrcr0, 1 },
	{ "mov cr2->eax", p_rdcr2, 1 }, { "mov eax->cr2", p_wrcr2, 1 },
	{ "mov cr3->eax", p_rdcr3, 1 }, { "mov eax->cr3", p_wrcr3, 1 },
	{ "mov cr4->eax", p_rdcr4, 1 }, { "mov eax->cr4", p_wrcr4, 1 },
	{ "mov dr7->eax", p_rddr7, 1 }, { "mov eax->dr7", p_wrdr7, 1 },
	{ "clts", p_clts, 1 }, { "hlt", p_hlt, 0 }, { "invd", p_invd, 1 },
	{ "wbinvd", p_wbinvd, 1 }, { "invlpg", p_invlpg, 1 },
	{ "rdmsr 0x174", p_rdmsr, 1 }, { "wrmsr 0x174", p_wrmsr, 1 },
	{ "lmsw", p_lmsw, 1 },
	{ "cli (iopl 0)", p_cli, 1 }, { "sti (iopl 0)", p_sti, 1 },
	{ "sysenter (sysenter_cs 0)", p_sysenter, 1 },
	{ "sysexit (sysenter_cs 0)", p_sysexit, 1 },
};

static void privileged(void)
{
	static const int cpls[] = { 0, 1, 3 };
	saved_cr0 = RDCR(0);
	saved_cr2 = RDCR(2);
	saved_cr3 = RDCR(3);
	saved_cr4 = RDCR(4);
	__asm__ volatile("mov %%dr7, %0" : "=r"(saved_dr7));
	__asm__ volatile("sgdt gdtr_copy; sidt idtr_copy" ::: "memory");
	/* IA32_SYSENTER_CS = 0 */
	__asm__ volatile("wrmsr" :: "c"(0x174), "a"(0), "d"(0));
	for (u32 i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		for (int c = 0; c < 3; c++) {
			if (cpls[c] == 0 && !priv[i].cpl0)
				continue;
			run_at(cpls[c], priv[i].fn);
			printf("%s cpl%d: ", priv[i].name, cpls[c]);
			outcome();
			printf("\n");
		}
	}
}

/* Instructions any CPL may execute, with their results. */
SNIP(a_sgdt, "sgdt store; mov store, %eax; mov store+2, %ebx");
SNIP(a_sidt, "sidt store; mov store, %eax; mov store+2, %ebx");
SNIP(a_smsw_r, "mov $0xdeadbeef, %eax; smsw %ax");
SNIP(a_smsw_m, "movl $0xdeadbeef, store; smsw store; mov store, %eax");
SNIP(a_str, "mov $0xdeadbeef, %eax; str %ax");
SNIP(a_sldt, "mov $0xdeadbeef, %eax; sldt %ax");
SNIP(a_lar, "mov $0xdeadbeef, %eax; lar %bx, %eax; setz %cl");
SNIP(a_lsl, "mov $0xdeadbeef, %eax; lsl %bx, %eax; setz %cl");
SNIP(a_verr, "verr %bx; setz %cl");
SNIP(a_verw, "verw %bx; setz %cl");
SNIP(a_rdtsc, "rdtsc");
SNIP(a_cpuid, "xor %eax, %eax; cpuid");

static void anycpl(void)
{
	static const int cpls[] = { 0, 1, 3 };
	static const u16 sels[] = { 0x08, 0x10, 0x19, 0x21, 0x2b, 0x33, 0x38, 0x00, 0x3f8 };
	for (int c = 0; c < 3; c++) {
		int cpl = cpls[c];
		run_at(cpl, a_sgdt);
		printf("sgdt cpl%d: ", cpl);
		outcome();
		printf(" limit=%04x base=gdt+%x\n", R.eax & 0xffff, R.ebx - (u32)gdt);
		run_at(cpl, a_sidt);
		printf("sidt cpl%d: ", cpl);
		outcome();
		printf(" limit=%04x base=idt+%x\n", R.eax & 0xffff, R.ebx - (u32)idt);
		run_at(cpl, a_smsw_r);
		printf("smsw ax cpl%d: ", cpl);
		outcome();
		printf(" eax=%08x\n", R.eax);
		run_at(cpl, a_smsw_m);
		printf("smsw m16 cpl%d: ", cpl);
		outcome();
		printf(" m32=%08x\n", R.eax);
		run_at(cpl, a_str);
		printf("str ax cpl%d: ", cpl);
		outcome();
		printf(" eax=%08x\n", R.eax);
		run_at(cpl, a_sldt);
		printf("sldt ax cpl%d: ", cpl);
		outcome();
		printf(" eax=%08x\n", R.eax);
		for (u32 i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
			run_regs.ebx = sels[i];
			run_at(cpl, a_lar);
			printf("lar %04x cpl%d: ", sels[i], cpl);
			outcome();
			printf(" zf=%d eax=%08x\n", R.ecx & 1, R.ecx & 1 ? R.eax & 0x00f0ff00 : R.eax);
			run_at(cpl, a_lsl);
			printf("lsl %04x cpl%d: ", sels[i], cpl);
			outcome();
			printf(" zf=%d eax=%08x\n", R.ecx & 1, R.eax);
			run_at(cpl, a_verr);
			printf("verr %04x cpl%d: ", sels[i], cpl);
			outcome();
			printf(" zf=%d\n", R.ecx & 1);
			run_at(cpl, a_verw);
			printf("verw %04x cpl%d: ", sels[i], cpl);
			outcome();
			printf(" zf=%d\n", R.ecx & 1);
		}
		run_regs.ebx = 0;
		chk(cpl == 0 ? "cpuid cpl0" : cpl == 1 ? "cpuid cpl1" : "cpuid cpl3", cpl, a_cpuid);
	}
	/* rdtsc and CR4.TSD */
	for (int tsd = 0; tsd < 2; tsd++) {
		WRCR(4, tsd ? 4 : 0);
		for (int c = 0; c < 3; c++) {
			run_at(cpls[c], a_rdtsc);
			printf("rdtsc tsd=%d cpl%d: ", tsd, cpls[c]);
			outcome();
			printf("\n");
		}
	}
	WRCR(4, 0);
}

/* IOPL, cli/sti and the TSS I/O permission bitmap (port 0x80) */
SNIP(io_outb80, "mov $0x55, %al; outb %al, $0x80");
SNIP(io_inb80, "inb $0x80, %al");
SNIP(io_outb81, "mov $0x55, %al; outb %al, $0x81");
SNIP(io_outw80, "mov $0x55, %eax; outw %ax, $0x80");
SNIP(io_outw7f, "mov $0x55, %eax; outw %ax, $0x7f");
SNIP(io_outl80, "mov $0x55, %eax; outl %eax, $0x80");
SNIP(io_outdx, "mov $0x80, %edx; mov $0x55, %al; outb %al, %dx");
SNIP(io_outsb, "mov $0x80, %edx; mov $store, %esi; outsb");
SNIP(io_insb, "mov $0x80, %edx; mov $store, %edi; insb");
SNIP(io_cli, "cli; pushfl; popl %eax");
SNIP(io_sti, "sti; pushfl; popl %eax");

static void io(void)
{
	static const struct { const char *name; void (*fn)(void); } ops[] = {
		{ "outb 0x80", io_outb80 }, { "inb 0x80", io_inb80 }, { "outb 0x81", io_outb81 },
		{ "outw 0x80", io_outw80 }, { "outw 0x7f", io_outw7f }, { "outl 0x80", io_outl80 },
		{ "outb dx=0x80", io_outdx }, { "outsb dx=0x80", io_outsb }, { "insb dx=0x80", io_insb },
	};
	static const struct { const char *name; int iopl; int bitmap; } cfg[] = {
		{ "iopl0 bitmap none", 0, 0 },
		{ "iopl0 bitmap allows 0x80", 0, 1 },
		{ "iopl0 bitmap allows 0x80-0x83", 0, 2 },
		{ "iopl0 iomap base beyond tss limit", 0, 3 },
		{ "iopl1", 1, 0 },
		{ "iopl3", 3, 0 },
	};
	static const int cpls[] = { 1, 3 };
	for (u32 k = 0; k < sizeof(cfg) / sizeof(cfg[0]); k++) {
		reset_tss();
		if (cfg[k].bitmap == 1)
			tss.iobitmap[0x10] = 0xfe;
		if (cfg[k].bitmap == 2)
			tss.iobitmap[0x10] = 0xf0;
		if (cfg[k].bitmap == 3) {
			tss.iobitmap[0x10] = 0x00;
			tss.iomap = 0x1000;
		}
		run_eflags = 2 | (cfg[k].iopl << 12);
		for (int c = 0; c < 2; c++) {
			for (u32 i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
				run_at(cpls[c], ops[i].fn);
				printf("%s %s cpl%d: ", ops[i].name, cfg[k].name, cpls[c]);
				outcome();
				printf("\n");
			}
			if (cfg[k].bitmap)
				continue;
			run_at(cpls[c], io_cli);
			printf("cli %s cpl%d: ", cfg[k].name, cpls[c]);
			outcome();
			if (R.vec == VEC_DONE)
				printf(" if=%d", (R.eax >> 9) & 1);
			printf("\n");
			run_at(cpls[c], io_sti);
			printf("sti %s cpl%d: ", cfg[k].name, cpls[c]);
			outcome();
			if (R.vec == VEC_DONE)
				printf(" if=%d", (R.eax >> 9) & 1);
			printf("\n");
		}
	}
	reset_tss();
	run_eflags = 2;
}

void kmain(void)
{
	printf("privileged.elf\n");
	privileged();
	anycpl();
	io();
	printf("done\n");
}
