/* addr16.elf: 16-bit addressing in 32-bit code (0x67 prefix): every
   ModRM form, wrap-around at 64 KiB, the default SS for bp forms (ss and
   ds are segments with different bases), segment overrides, the default
   segment for 32-bit ebp/esp forms, 16-bit pushes and pops on 32-bit and
   16-bit stacks, and a 16-bit code segment.  See README.md. */
#include "rt.h"

u8 area[0x10000] __attribute__((aligned(16)));   /* ds segment 0x43 */
u8 area2[0x10000] __attribute__((aligned(16)));  /* ss segment 0x4b / 0x53 */

#define DS16 0x43
#define SS32 0x4b
#define SS16 0x53
#define CS16 0x5b

/* ds = area, ss = area2; eax = effective address, ecx = default segment,
   edx = ds override, esi = ss override (esi is an input, so it is the
   last one read) */
#define FORM(name, f) SNIP(name, \
	"mov $0x43, %eax; mov %eax, %ds; mov $0x4b, %eax; mov %eax, %ss;" \
	"addr16 lea " f ", %eax; addr16 mov " f ", %ecx; addr16 mov %ds:" f ", %edx; addr16 mov %ss:" f ", %esi")

FORM(a_bx_si, "(%bx,%si)");
FORM(a_bx_di, "(%bx,%di)");
FORM(a_bp_si, "(%bp,%si)");
FORM(a_bp_di, "(%bp,%di)");
FORM(a_si, "(%si)");
FORM(a_di, "(%di)");
FORM(a_d16, "0x1234");
FORM(a_bx, "(%bx)");
FORM(a_bx_si_d8, "0x7f(%bx,%si)");
FORM(a_bx_di_d8, "-0x80(%bx,%di)");
FORM(a_bp_si_d8, "0x10(%bp,%si)");
FORM(a_bp_di_d8, "-0x40(%bp,%di)");
FORM(a_si_d8, "-0x1(%si)");
FORM(a_di_d8, "0x22(%di)");
FORM(a_bp_d8, "0x10(%bp)");
FORM(a_bp_0, "(%bp)");
FORM(a_bx_d8, "-0x10(%bx)");
FORM(a_bx_si_d16, "0x8000(%bx,%si)");
FORM(a_bx_di_d16, "0x1234(%bx,%di)");
FORM(a_bp_si_d16, "0xfff0(%bp,%si)");
FORM(a_bp_di_d16, "0x4321(%bp,%di)");
FORM(a_si_d16, "0xf000(%si)");
FORM(a_di_d16, "0x0101(%di)");
FORM(a_bp_d16, "0xff00(%bp)");
FORM(a_bx_d16, "0x2000(%bx)");

static const struct { const char *name; void (*fn)(void); } forms[] = {
	{ "[bx+si]", a_bx_si }, { "[bx+di]", a_bx_di }, { "[bp+si]", a_bp_si }, { "[bp+di]", a_bp_di },
	{ "[si]", a_si }, { "[di]", a_di }, { "[disp16 0x1234]", a_d16 }, { "[bx]", a_bx },
	{ "[bx+si+0x7f]", a_bx_si_d8 }, { "[bx+di-0x80]", a_bx_di_d8 }, { "[bp+si+0x10]", a_bp_si_d8 },
	{ "[bp+di-0x40]", a_bp_di_d8 }, { "[si-1]", a_si_d8 }, { "[di+0x22]", a_di_d8 }, { "[bp+0x10]", a_bp_d8 },
	{ "[bp+0]", a_bp_0 }, { "[bx-0x10]", a_bx_d8 },
	{ "[bx+si+0x8000]", a_bx_si_d16 }, { "[bx+di+0x1234]", a_bx_di_d16 }, { "[bp+si+0xfff0]", a_bp_si_d16 },
	{ "[bp+di+0x4321]", a_bp_di_d16 }, { "[si+0xf000]", a_si_d16 }, { "[di+0x0101]", a_di_d16 },
	{ "[bp+0xff00]", a_bp_d16 }, { "[bx+0x2000]", a_bx_d16 },
};

static void addr16(void)
{
	/* upper halves set: only the low 16 bits take part */
	static const struct { u32 bx, si, di, bp; } r[] = {
		{ 0xdead1000, 0xbeef0200, 0xcafe0030, 0xface0004 },
		{ 0xdeadf000, 0xbeef1100, 0xcafe2220, 0xfacef330 },   /* sums wrap at 64 KiB */
	};
	for (int k = 0; k < 2; k++)
		for (u32 i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
			run_regs.ebx = r[k].bx;
			run_regs.esi = r[k].si;
			run_regs.edi = r[k].di;
			run_regs.ebp = r[k].bp;
			run_at(3, forms[i].fn);
			printf("%s bx=%04x si=%04x di=%04x bp=%04x: ", forms[i].name, r[k].bx & 0xffff, r[k].si & 0xffff,
			       r[k].di & 0xffff, r[k].bp & 0xffff);
			outcome();
			printf(" ea=%08x default=%08x ds:=%08x ss:=%08x\n", R.eax, R.ecx, R.edx, R.esi);
		}
	run_regs = (struct regs){ 0 };
}

/* 32-bit forms: ebp and esp as base default to SS, as index they do not */
#define FORM32(name, f) SNIP(name, \
	"mov $0x43, %eax; mov %eax, %ds; mov $0x4b, %eax; mov %eax, %ss;" \
	"mov $0x100, %esp; mov $0x330, %ebp; mov $0x20, %esi; mov $0x8, %edi;" \
	"lea " f ", %eax; mov " f ", %ecx")
FORM32(b_ebp, "(%ebp)");
FORM32(b_esp, "4(%esp)");
FORM32(b_ebp_esi, "(%ebp,%esi,2)");
FORM32(b_esi_ebp, "(%esi,%ebp)");
FORM32(b_edi_ebp4, "0x10(%edi,%ebp,4)");
FORM32(b_esp_ebp, "(%esp,%ebp)");
FORM32(b_noebp, "0x40(,%ebp,2)");

static void addr32(void)
{
	static const struct { const char *name; void (*fn)(void); } f[] = {
		{ "[ebp]", b_ebp }, { "[esp+4]", b_esp }, { "[ebp+esi*2]", b_ebp_esi }, { "[esi+ebp]", b_esi_ebp },
		{ "[edi+ebp*4+0x10]", b_edi_ebp4 }, { "[esp+ebp]", b_esp_ebp }, { "[ebp*2+0x40]", b_noebp },
	};
	for (u32 i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		run_at(3, f[i].fn);
		printf("32-bit %s: ", f[i].name);
		outcome();
		printf(" ea=%08x value=%08x\n", R.eax, R.ecx);
	}
}

/* pushes and pops with 16-bit operands; 32-bit and 16-bit stacks */
SNIP(st_32, "mov $0x4b, %eax; mov %eax, %ss; mov $0x10, %esp; mov $0xa1b2c3d4, %eax; pushw %ax; mov %esp, %ecx;"
	"pushw $0x5566; mov %esp, %edx; popl %esi; mov %esp, %edi");
SNIP(st_16, "mov $0x53, %eax; mov %eax, %ss; mov $0x12340010, %esp; mov $0xa1b2c3d4, %eax; push %eax; mov %esp, %ecx;"
	"pushw $0x5566; mov %esp, %edx; popl %esi; mov %esp, %edi");
SNIP(st_16wrap, "mov $0x53, %eax; mov %eax, %ss; mov $0x56780000, %esp; pushw $0x7788; mov %esp, %ecx;"
	"popw %dx; mov %esp, %edi");
SNIP(st_16wrap_pop, "mov $0x53, %eax; mov %eax, %ss; mov $0x9abcfffe, %esp; movw $0x99aa, %ss:0xfffe; popw %dx; mov %esp, %ecx");

static void stack16(void)
{
	for (int i = 0; i < 0x20; i++)
		area2[i] = 0;
	run_at(3, st_32);
	printf("32-bit stack: ");
	outcome();
	printf(" pushw->esp=%08x pushw imm->esp=%08x popl=%08x ->esp=%08x mem=%02x%02x%02x%02x\n", R.ecx, R.edx, R.esi,
	       R.edi, area2[0x11], area2[0x10], area2[0xf], area2[0xe]);
	for (int i = 0; i < 0x20; i++)
		area2[i] = 0;
	run_at(3, st_16);
	printf("16-bit stack: ");
	outcome();
	printf(" push->esp=%08x pushw imm->esp=%08x popl=%08x ->esp=%08x\n", R.ecx, R.edx, R.esi, R.edi);
	area2[0xfffe] = area2[0xffff] = 0;
	run_at(3, st_16wrap);
	printf("16-bit stack wrap on push: ");
	outcome();
	printf(" esp=%08x mem[fffe]=%02x%02x popw=%04x ->esp=%08x\n", R.ecx, area2[0xffff], area2[0xfffe], R.edx & 0xffff,
	       R.edi);
	run_at(3, st_16wrap_pop);
	printf("16-bit stack wrap on pop: ");
	outcome();
	printf(" popw=%04x esp=%08x\n", R.edx & 0xffff, R.ecx);
}

/* a 16-bit code segment: default operand and address size 16 */
extern char c16[];
__asm__(".pushsection .text\n\t.align 16\n\t.globl c16\nc16:\n\t.code16\n\t"
	"mov $0x1111, %ax\n\tmov (%bx,%si), %cx\n\tmov $0x89abcdef, %edx\n\tlea 2(%bx,%di), %di\n\t"
	"push %ax\n\tmov %esp, %ebp\n\tint $0x80\n\t.code32\n\t.popsection");
SNIP(j16, "mov $0x43, %eax; mov %eax, %ds; mov $0xffffffff, %eax; ljmp $0x5b, $0");

static void code16(void)
{
	run_regs = (struct regs){ 0, 0xffffffff, 0, 0xdead0100, 0, 0xbeef0022, 0xcafe0040 };
	run_at(3, j16);
	printf("16-bit code segment: ");
	outcome();
	printf(" eip=c16+%x cs=%04x eax=%08x ecx=%08x edx=%08x edi=%08x esp=", R.eip, R.cs, R.eax, R.ecx, R.edx, R.edi);
	pstack(R.ebp);
	printf("\n");
	run_regs = (struct regs){ 0 };
}

void kmain(void)
{
	printf("addr16.elf\n");
	for (u32 i = 0; i < 0x10000; i++) {
		area[i] = (u8)(i ^ (i >> 8));
		area2[i] = (u8)~(i ^ (i >> 8));
	}
	gdt[8] = mkseg((u32)area, 0xffff, 0xf2, 0x4);
	gdt[9] = mkseg((u32)area2, 0xffff, 0xf2, 0x4);
	gdt[10] = mkseg((u32)area2, 0xffff, 0xf2, 0x0);
	gdt[11] = mkseg((u32)c16, 0xffff, 0xfa, 0x0);
	addr16();
	addr32();
	stack16();
	code16();
	printf("done\n");
}
