/* rings.elf: privilege transitions through interrupt gates and iret, the
   TSS stack switch, ring 1 the way lguest runs a guest kernel, gate
   checks, nested exceptions and a double fault.  See README.md. */
#include "rt.h"

#define V 0x50                   /* the vector most gate tests use */
#define GATE_INT 0xe
#define GATE_TRAP 0xf

SNIP(t_nop, "nop");
/* int $0x50 after recording the stack pointer */
SNIP(t_int50, "mov %esp, caller_esp; int $0x50");
SNIP(t_int3, "mov %esp, caller_esp; int3");
SNIP(t_int_3, "mov %esp, caller_esp; int $3");
SNIP(t_into, "mov %esp, caller_esp; mov $0x7f, %al; add $1, %al; into");
SNIP(t_into_nov, "mov %esp, caller_esp; into");
SNIP(t_ud2, "mov %esp, caller_esp; ud2");
SNIP(t_int51, "int $0x51");
SNIP(t_int52, "int $0x52");
SNIP(t_int90, "int $0x90");
SNIP(t_int1f, "mov %esp, caller_esp; int $0x1f");

/* lguest-style system call: ring 3 -> trap gate -> ring 1 handler that
   irets straight back to ring 3. */
SNIP(t_syscall, "mov $1, %eax; mov %esp, caller_esp; int $0x81; mov %esp, %ebx; mov %cs, %ecx; mov %ss, %edx");
CODE(h_syscall_r1, "add $0x10, %eax; mov %esp, %esi; mov %ss, %edi; iret");

/* handler that faults (nested exception) */
CODE(h_ud, "ud2");

/* iret from CPL 0 to CPL 3 with ds DPL 0, es DPL 3, fs DPL 1, gs null:
   data segments with DPL < new CPL become null */
CODE(r3_segs, "mov %ds, %eax; mov %es, %ebx; mov %fs, %ecx; mov %gs, %edx; mov %esp, %esi; mov %ss, %edi; int $0x80");
SNIP(t_iret_0to3,
	"mov $0x10, %eax; mov %eax, %ds; mov $0x33, %eax; mov %eax, %es; mov $0x21, %eax; mov %eax, %fs;"
	"xor %eax, %eax; mov %eax, %gs;"
	"pushl $0x33; pushl $stack3_top - 0x40; pushl $0x202; pushl $0x2b; pushl $r3_segs; iret");
/* iret from CPL 1 (segments from run_at: all R1DATA) to CPL 3, es = UDATA */
SNIP(t_iret_1to3,
	"mov $0x33, %eax; mov %eax, %es; xor %eax, %eax; mov %eax, %gs;"
	"pushl $0x33; pushl $stack3_top - 0x80; pushl $0x2; pushl $0x2b; pushl $r3_segs; iret");
/* iret from CPL 0 to CPL 1 */
CODE(r1_segs, "mov %ds, %eax; mov %es, %ebx; mov %fs, %ecx; mov %gs, %edx; mov %esp, %esi; mov %ss, %edi; int $0x80");
SNIP(t_iret_0to1,
	"mov $0x10, %eax; mov %eax, %ds; mov $0x21, %eax; mov %eax, %es; mov $0x33, %eax; mov %eax, %fs;"
	"pushl $0x21; pushl $stack1_top - 0x20; pushl $0x2; pushl $0x19; pushl $r1_segs; iret");
/* iret at CPL 3 to CPL 3: only eip, cs, eflags popped; stack and data segments unchanged */
SNIP(t_iret_3to3, "mov %esp, caller_esp; pushfl; pushl $0x2b; pushl $1f; iret; 1: mov %esp, %esi; mov %ss, %edi; mov %ds, %eax");
/* iret to an inner ring */
SNIP(t_iret_3to0, "pushl $0x10; pushl $stack3_top - 0x40; pushl $2; pushl $0x08; pushl $r3_segs; iret");
SNIP(t_iret_3to1, "pushl $0x21; pushl $stack3_top - 0x40; pushl $2; pushl $0x19; pushl $r3_segs; iret");
/* iret to ring 1 with an ss whose RPL is not 1 */
SNIP(t_iret_ssrpl, "pushl $0x20; pushl $stack1_top; pushl $2; pushl $0x19; pushl $r1_segs; iret");
/* ss DPL 0 with RPL 1 */
SNIP(t_iret_ssdpl, "pushl $0x11; pushl $stack1_top; pushl $2; pushl $0x19; pushl $r1_segs; iret");
/* null ss for ring 3 */
SNIP(t_iret_ssnull, "pushl $0; pushl $stack3_top; pushl $2; pushl $0x2b; pushl $r3_segs; iret");
/* ring 1 code (DPL 1) with RPL 3 */
SNIP(t_iret_csdpl, "pushl $0x33; pushl $stack3_top; pushl $2; pushl $0x1b; pushl $r3_segs; iret");
/* cs = a data segment */
SNIP(t_iret_csdata, "pushl $0x33; pushl $stack3_top; pushl $2; pushl $0x33; pushl $r3_segs; iret");
/* cs null */
SNIP(t_iret_csnull, "pushl $0x33; pushl $stack3_top; pushl $2; pushl $0; pushl $r3_segs; iret");
/* cs selector beyond the GDT limit */
SNIP(t_iret_cslim, "pushl $0x33; pushl $stack3_top; pushl $2; pushl $0x3fb; pushl $r3_segs; iret");
/* test descriptor 8 (0x40): filled in per test */
SNIP(t_iret_cs40, "pushl $0x33; pushl $stack3_top; pushl $2; pushl $0x43; pushl $r3_segs; iret");
SNIP(t_iret_ss40, "pushl $0x43; pushl $stack3_top; pushl $2; pushl $0x2b; pushl $r3_segs; iret");

static void gate(int vec, u32 sel, void (*h)(void), u32 type, u32 dpl)
{
	set_gate(vec, sel, (u32)h, type, dpl);
}

static void probe(const char *name, int cpl, void (*fn)(void))
{
	run_at(cpl, fn);
	gate_report(name);
}

static void segreport(const char *name, int cpl, void (*fn)(void))
{
	run_at(cpl, fn);
	printf("%s: ", name);
	if (R.vec != VEC_DONE) {
		outcome();
	} else {
		printf("cs=%04x ds=%04x es=%04x fs=%04x gs=%04x ss=%04x esp=", R.cs, R.eax & 0xffff, R.ebx & 0xffff,
		       R.ecx & 0xffff, R.edx & 0xffff, R.edi & 0xffff);
		pstack(R.esi);
	}
	printf("\n");
}

static void basic(void)
{
	static const int cpls[] = { 0, 1, 3 };
	for (int i = 0; i < 3; i++) {
		run_at(cpls[i], t_nop);
		printf("iret to cpl%d then int80: ", cpls[i]);
		outcome();
		printf(" eip=+%x cs=%04x eflags=%08x", R.eip - (u32)cur_fn, R.cs, R.eflags);
		if (R.outer) {
			printf(" ss=%04x esp=", R.ss);
			pstack(R.esp);
		}
		segs();
		printf("\n");
	}
}

static void gates(void)
{
	/* interrupt and trap gates to ring 0, from each ring; IF=1 before */
	run_eflags = 0x202;
	gate(V, SEL_KCODE, gh_noerr, GATE_INT, 3);
	probe("int gate dpl3 to ring0 from cpl3", 3, t_int50);
	probe("int gate dpl3 to ring0 from cpl1", 1, t_int50);
	probe("int gate dpl3 to ring0 from cpl0", 0, t_int50);
	gate(V, SEL_KCODE, gh_noerr, GATE_TRAP, 3);
	probe("trap gate dpl3 to ring0 from cpl3", 3, t_int50);
	probe("trap gate dpl3 to ring0 from cpl1", 1, t_int50);
	probe("trap gate dpl3 to ring0 from cpl0", 0, t_int50);

	/* gates into ring 1 (lguest: guest kernel at ring 1, stack from ss1:esp1) */
	gate(V, SEL_R1CODE, gh_noerr, GATE_TRAP, 3);
	probe("trap gate dpl3 to ring1 from cpl3", 3, t_int50);
	probe("trap gate dpl3 to ring1 from cpl1", 1, t_int50);
	probe("trap gate dpl3 to ring1 from cpl0", 0, t_int50);
	gate(V, SEL_R1CODE, gh_noerr, GATE_INT, 3);
	probe("int gate dpl3 to ring1 from cpl3", 3, t_int50);
	probe("int gate dpl3 to ring1 from cpl1", 1, t_int50);
	/* gate selector with RPL 0 for the DPL 1 code segment: RPL is ignored */
	gate(V, SEL_R1CODE & ~3, gh_noerr, GATE_INT, 3);
	probe("int gate to ring1 (sel rpl0) from cpl3", 3, t_int50);
	/* gate DPL checks for software interrupts */
	gate(V, SEL_KCODE, gh_noerr, GATE_INT, 1);
	probe("int gate dpl1 from cpl1", 1, t_int50);
	probe("int gate dpl1 from cpl3", 3, t_int50);
	gate(V, SEL_KCODE, gh_noerr, GATE_INT, 0);
	probe("int gate dpl0 from cpl0", 0, t_int50);
	probe("int gate dpl0 from cpl1", 1, t_int50);
	probe("int gate dpl0 from cpl3", 3, t_int50);
	/* lguest's hypercall vector 0x1f: DPL 1, usable by the guest kernel only */
	gate(0x1f, SEL_KCODE, gh_noerr, GATE_INT, 1);
	probe("int 0x1f dpl1 gate from cpl1", 1, t_int1f);
	probe("int 0x1f dpl1 gate from cpl3", 3, t_int1f);
	reset_gate(0x1f);

	/* int3, int $3, into: DPL checked; ud2: never */
	gate(3, SEL_KCODE, gh_noerr, GATE_INT, 0);
	probe("int3 (cc) dpl0 gate from cpl3", 3, t_int3);
	probe("int $3 (cd 03) dpl0 gate from cpl3", 3, t_int_3);
	probe("int3 (cc) dpl0 gate from cpl0", 0, t_int3);
	gate(3, SEL_KCODE, gh_noerr, GATE_INT, 3);
	probe("int3 (cc) dpl3 gate from cpl3", 3, t_int3);
	reset_gate(3);
	gate(4, SEL_KCODE, gh_noerr, GATE_INT, 0);
	probe("into OF=1 dpl0 gate from cpl3", 3, t_into);
	chk("into OF=0 dpl0 gate from cpl3", 3, t_into_nov);
	gate(4, SEL_KCODE, gh_noerr, GATE_INT, 3);
	probe("into OF=1 dpl3 gate from cpl3", 3, t_into);
	reset_gate(4);
	gate(6, SEL_KCODE, gh_noerr, GATE_INT, 0);
	probe("ud2 dpl0 gate from cpl3", 3, t_ud2);
	gate(6, SEL_R1CODE, gh_noerr, GATE_INT, 0);
	probe("ud2 gate to ring1 from cpl3", 3, t_ud2);
	reset_gate(6);

	/* gate and target checks */
	gate(V, SEL_KCODE, gh_noerr, GATE_INT, 3);
	idt[V] &= ~(1ull << 47);
	probe("gate not present from cpl3", 3, t_int50);
	probe("gate not present from cpl0", 0, t_int50);
	gate(V, SEL_KCODE, gh_noerr, 0xc, 3);      /* a call gate type in the IDT */
	probe("gate type 0xc (call gate) in idt", 3, t_int50);
	gate(V, SEL_KCODE, gh_noerr, 0x9, 3);      /* a TSS type */
	probe("gate type 0x9 in idt", 3, t_int50);
	gate(V, 0, gh_noerr, GATE_INT, 3);
	probe("gate selector null", 3, t_int50);
	gate(V, 0x3f8, gh_noerr, GATE_INT, 3);
	probe("gate selector beyond gdt limit", 3, t_int50);
	gate(V, SEL_KDATA, gh_noerr, GATE_INT, 3);
	probe("gate selector data segment", 3, t_int50);
	gate(V, SEL_UCODE, gh_noerr, GATE_INT, 3);
	probe("gate target dpl3 code from cpl0", 0, t_int50);
	probe("gate target dpl3 code from cpl3", 3, t_int50);
	gate(V, SEL_R1CODE, gh_noerr, GATE_INT, 3);
	probe("gate target dpl1 code from cpl0", 0, t_int50);
	gdt[8] = mkseg(0, 0xfffff, 0x1b, 0xc);      /* ring 0 code, not present */
	gate(V, 0x40, gh_noerr, GATE_INT, 3);
	probe("gate target code not present", 3, t_int50);
	gdt[8] = mkseg(0, 0xfffff, 0x9f, 0xc);      /* ring 0 conforming code */
	probe("gate target conforming dpl0 code from cpl3", 3, t_int50);
	gdt[8] = mkseg(0, 0xfffff, 0xff, 0xc);      /* ring 3 conforming code */
	probe("gate target conforming dpl3 code from cpl0", 0, t_int50);
	probe("gate target conforming dpl3 code from cpl3", 3, t_int50);
	gdt[8] = 0;
	reset_gate(V);

	/* vector beyond the IDT limit */
	load_idt(0x80 * 8 + 7);
	chk("int 0x90 beyond idt limit", 0, t_int90);
	load_idt(sizeof(idt) - 1);
	run_eflags = 2;
}

static void tss_stacks(void)
{
	/* the stack for a ring 3 -> ring 1 gate comes from ss1:esp1 */
	static const struct { const char *name; u32 ss1; } c[] = {
		{ "ss1 null", 0 },
		{ "ss1 rpl0 (0x20)", 0x20 },
		{ "ss1 dpl0 data (0x11)", 0x11 },
		{ "ss1 code segment (0x19)", 0x19 },
		{ "ss1 read-only data (0x41)", 0x41 },
		/* not present: the SDM says #SS(0x48), QEMU raises #TS(0x48): see README */
		{ "ss1 beyond gdt limit (0x3f9)", 0x3f9 },
		{ "ss1 dpl3 data (0x33)", 0x33 },
	};
	gate(V, SEL_R1CODE, gh_noerr, GATE_INT, 3);
	gdt[8] = mkseg(0, 0xfffff, 0xb1, 0xc);      /* ring 1 read-only data */
	gdt[9] = mkseg(0, 0xfffff, 0x33, 0xc);      /* ring 1 data, not present */
	for (u32 i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		tss.ss1 = c[i].ss1;
		char name[64];
		const char *p = "tss ";
		int n = 0;
		while (*p) name[n++] = *p++;
		for (p = c[i].name; *p;) name[n++] = *p++;
		name[n] = 0;
		probe(name, 3, t_int50);
	}
	reset_tss();
	/* esp1 is used as given */
	tss.esp1 = (u32)istack1_top - 0x100;
	probe("tss esp1 = i1-100", 3, t_int50);
	reset_tss();
	gdt[8] = gdt[9] = 0;
	reset_gate(V);
}

static void irets(void)
{
	segreport("iret cpl0->cpl3 (ds dpl0, es dpl3, fs dpl1, gs null)", 0, t_iret_0to3);
	printf("iret cpl0->cpl3 eflags: %08x\n", R.eflags);
	segreport("iret cpl1->cpl3 (ds,fs r1data, es udata, gs null)", 1, t_iret_1to3);
	segreport("iret cpl0->cpl1 (ds dpl0, es dpl1, fs dpl3)", 0, t_iret_0to1);
	run_at(3, t_iret_3to3);
	printf("iret cpl3->cpl3: ");
	outcome();
	printf(" eip=+%x cs=%04x esp=", R.eip - (u32)cur_fn, R.cs);
	pstack(R.esi);
	printf(" ss=%04x ds=%04x\n", R.edi & 0xffff, R.eax & 0xffff);
	chk("iret cpl3->cpl0", 3, t_iret_3to0);
	chk("iret cpl3->cpl1", 3, t_iret_3to1);
	chk("iret cpl1->cpl0", 1, t_iret_3to0);
	chk("iret to cpl1 ss rpl0", 0, t_iret_ssrpl);
	chk("iret to cpl1 ss dpl0", 0, t_iret_ssdpl);
	chk("iret to cpl3 ss null", 0, t_iret_ssnull);
	chk("iret cs rpl3 dpl1 non-conforming", 0, t_iret_csdpl);
	chk("iret cs data segment", 0, t_iret_csdata);
	chk("iret cs null", 0, t_iret_csnull);
	chk("iret cs beyond gdt limit", 0, t_iret_cslim);
	gdt[8] = mkseg(0, 0xfffff, 0x7b, 0xc);      /* ring 3 code, not present */
	chk("iret cs not present", 0, t_iret_cs40);
	gdt[8] = mkseg(0, 0xfffff, 0xfb, 0xc);      /* ring 3 code, fresh */
	segreport("iret cs fresh ring3 code", 0, t_iret_cs40);
	printf("iret cs fresh: accessed=%d\n", (u32)(gdt[8] >> 40) & 1);
	/* ss not present: SDM pseudocode #SS(sel), its exception list and QEMU #NP(sel): see README */
	gdt[8] = mkseg(0, 0xfffff, 0xf1, 0xc);      /* ring 3 data, read-only */
	chk("iret ss read-only", 0, t_iret_ss40);
	gdt[8] = mkseg(0, 0xfffff, 0xf2, 0xc);      /* ring 3 data, fresh */
	segreport("iret ss fresh ring3 data", 0, t_iret_ss40);
	printf("iret ss fresh: accessed=%d\n", (u32)(gdt[8] >> 40) & 1);
	gdt[8] = 0;
}

static void syscall_lguest(void)
{
	gate(0x81, SEL_R1CODE, h_syscall_r1, GATE_TRAP, 3);
	run_at(3, t_syscall);
	printf("lguest syscall ring3->ring1->iret->ring3: ");
	outcome();
	printf(" eax=%x esp=", R.eax);
	pstack(R.ebx);
	printf(" cs=%04x ss=%04x r1-esp=", R.ecx & 0xffff, R.edx & 0xffff);
	pstack(R.esi);
	printf(" r1-ss=%04x\n", R.edi & 0xffff);
	reset_gate(0x81);
}

static void nested(void)
{
	/* a handler that faults: the #UD frame is pushed below the first */
	gate(0x51, SEL_KCODE, h_ud, GATE_INT, 3);
	run_at(3, t_int51);
	printf("fault inside handler: ");
	printf("#%s at h_ud+%x cs=%04x esp=", excname(R.vec), R.eip - (u32)h_ud, R.cs);
	pstack(R.esp);
	printf("\n");
	reset_gate(0x51);

	/* #NP while delivering int 0x52, then #GP while delivering the #NP: #DF */
	gate(0x52, SEL_KCODE, gh_noerr, GATE_INT, 3);
	idt[0x52] &= ~(1ull << 47);
	chk("int gate not present (#NP delivered)", 3, t_int52);
	gate(11, 0x3f8, gh_err, GATE_INT, 0);
	chk("#NP whose gate selector is beyond the gdt: #DF", 3, t_int52);
	idt[11] &= ~(1ull << 47);
	chk("#NP whose gate is not present: #DF", 0, t_int52);
	reset_gate(11);
	reset_gate(0x52);

	/* benign then contributory: #UD whose gate is not present gives #NP,
	   not #DF; its error code has EXT set (0x33) per the SDM but QEMU never
	   sets EXT, so only the vector is printed */
	idt[6] &= ~(1ull << 47);
	run_at(3, t_ud2);
	printf("ud2 with #UD gate not present: #%s\n", excname(R.vec));
	reset_gate(6);
}

void kmain(void)
{
	printf("rings.elf\n");
	basic();
	gates();
	tss_stacks();
	irets();
	syscall_lguest();
	nested();
	printf("done\n");
}
