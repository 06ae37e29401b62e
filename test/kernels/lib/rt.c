/* Shared runtime of the CPU test kernels: serial output, exit, GDT/IDT/TSS,
   the trap handler and result printing.  See ../README.md. */
#include <stdarg.h>
#include "rt.h"

u64 gdt[GDT_ENTRIES] __attribute__((section(".bss.sys"), aligned(8)));
u64 idt[256] __attribute__((section(".bss.sys"), aligned(8)));
struct tss tss __attribute__((section(".bss.sys"), aligned(128)));

volatile struct rec R;
struct regs run_regs;
u32 run_eflags = 2;
char *cur_fn;
u32 run_saved_esp;
u32 in_run;

/* ---- serial port (16550 at 0x3f8) and the exit device ---- */
#define COM1 0x3f8
static void serial_init(void)
{
	outb(COM1 + 1, 0x00);   /* IER: no interrupts */
	outb(COM1 + 3, 0x80);   /* LCR: DLAB */
	outb(COM1 + 0, 0x01);   /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);   /* 8N1 */
	outb(COM1 + 2, 0x07);   /* FCR: enable and clear FIFOs */
	outb(COM1 + 4, 0x03);   /* MCR: DTR, RTS */
}

static void putch(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		;
	outb(COM1, (u8)c);
}

void exit(u32 value)
{
	__asm__ volatile("outl %0, %1" :: "a"(value), "Nd"((u16)0xf4));
	for (;;)
		;
}

static void putnum(u32 v, int base, int width, int zero)
{
	char buf[16];
	int n = 0;
	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n < width) {
		putch(zero ? '0' : ' ');
		width--;
	}
	while (n)
		putch(buf[--n]);
}

/* %s %c %d %u %x with optional 0 and width (e.g. %08x) */
void printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putch(*fmt);
			continue;
		}
		fmt++;
		int zero = 0, width = 0;
		if (*fmt == '0') {
			zero = 1;
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			while (*s)
				putch(*s++);
			break;
		}
		case 'c':
			putch((char)va_arg(ap, int));
			break;
		case 'd':
		case 'u':
			putnum(va_arg(ap, u32), 10, width, zero);
			break;
		case 'x':
			putnum(va_arg(ap, u32), 16, width, zero);
			break;
		default:
			putch(*fmt);
		}
	}
	va_end(ap);
}

/* ---- descriptors ---- */
u64 mkseg(u32 base, u32 limit, u32 access, u32 flags)
{
	u32 lo = (limit & 0xffff) | (base << 16);
	u32 hi = ((base >> 16) & 0xff) | (access << 8) | (limit & 0xf0000) |
		 ((flags & 0xf) << 20) | (base & 0xff000000);
	return ((u64)hi << 32) | lo;
}

void set_gate(int vec, u32 sel, u32 off, u32 type, u32 dpl)
{
	u32 lo = (off & 0xffff) | (sel << 16);
	u32 hi = (off & 0xffff0000) | 0x8000 | (dpl << 13) | (type << 8);
	idt[vec] = ((u64)hi << 32) | lo;
}

void reset_gate(int vec)
{
	set_gate(vec, SEL_KCODE, ISR(vec), 0xe, vec == VEC_DONE ? 3 : 0);
}

void load_gdt(void)
{
	struct { u16 limit; u32 base; } __attribute__((packed)) d = { sizeof(gdt) - 1, (u32)gdt };
	__asm__ volatile("lgdt %0" :: "m"(d));
}

void load_idt(u32 limit)
{
	struct { u16 limit; u32 base; } __attribute__((packed)) d = { limit, (u32)idt };
	__asm__ volatile("lidt %0" :: "m"(d));
}

/* Fresh TSS: ring 0 and ring 1 stacks, I/O bitmap present but denying
   every port, iomap base pointing at it. */
void reset_tss(void)
{
	char *p = (char *)&tss;
	for (u32 i = 0; i < sizeof(tss); i++)
		p[i] = 0;
	tss.esp0 = (u32)istack0_top;
	tss.ss0 = SEL_KDATA;
	tss.esp1 = (u32)istack1_top;
	tss.ss1 = SEL_R1DATA;
	tss.iomap = TSS_IOMAP_OFF;
	for (int i = 0; i <= 0x80; i++)
		tss.iobitmap[i] = 0xff;
}

void rt_init(void)
{
	serial_init();
	/* Under QEMU the BIOS left the 8259s programmed: mask them so nothing
	   arrives while a test runs with IF=1 (the bare machine has no PIC
	   and ignores these writes). */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);

	gdt[0] = 0;
	gdt[SEL_KCODE >> 3] = mkseg(0, 0xfffff, 0x9b, 0xc);
	gdt[SEL_KDATA >> 3] = mkseg(0, 0xfffff, 0x93, 0xc);
	gdt[SEL_R1CODE >> 3] = mkseg(0, 0xfffff, 0xbb, 0xc);
	gdt[SEL_R1DATA >> 3] = mkseg(0, 0xfffff, 0xb3, 0xc);
	gdt[SEL_UCODE >> 3] = mkseg(0, 0xfffff, 0xfb, 0xc);
	gdt[SEL_UDATA >> 3] = mkseg(0, 0xfffff, 0xf3, 0xc);
	reset_tss();
	gdt[SEL_TSS >> 3] = mkseg((u32)&tss, TSS_LIMIT, 0x89, 0);
	load_gdt();
	__asm__ volatile(
		"ljmp %0, $1f\n1:\n\t"
		"mov %1, %%eax\n\t"
		"mov %%eax, %%ds\n\tmov %%eax, %%es\n\tmov %%eax, %%fs\n\t"
		"mov %%eax, %%gs\n\tmov %%eax, %%ss\n\t"
		"mov %2, %%eax\n\tltr %%ax"
		:: "i"(SEL_KCODE), "i"(SEL_KDATA), "i"(SEL_TSS) : "eax", "memory");
	for (int v = 0; v < 256; v++)
		reset_gate(v);
	load_idt(sizeof(idt) - 1);
	/* a known CR0 (PE, ET), CR4 and LDTR whatever the loader left */
	WRCR(0, 0x11);
	WRCR(4, 0);
	__asm__ volatile("lldt %w0" :: "r"(0));
}

/* ---- traps ---- */
void trap(struct frame *f)
{
	if (!in_run) {
		printf("UNEXPECTED %s err=%x eip=%x cs=%x\n", excname(f->vec), f->err, f->eip, f->cs & 0xffff);
		exit(0x7e);
	}
	R.vec = f->vec;
	R.err = f->err;
	R.eip = f->eip;
	R.cs = f->cs & 0xffff;
	R.eflags = f->eflags;
	R.outer = (f->cs & 3) != 0;
	if (R.outer) {
		R.esp = f->esp;
		R.ss = f->ss & 0xffff;
	} else {
		u32 ss;
		__asm__ volatile("mov %%ss, %0" : "=r"(ss));
		R.esp = (u32)&f->esp;
		R.ss = ss;
	}
	R.eax = f->eax; R.ecx = f->ecx; R.edx = f->edx; R.ebx = f->ebx;
	R.ebp = f->ebp; R.esi = f->esi; R.edi = f->edi;
	R.ds = f->ds & 0xffff; R.es = f->es & 0xffff;
	R.fs = f->fs & 0xffff; R.gs = f->gs & 0xffff;
	R.cr2 = RDCR(2);
	run_return();
}

static const char *names[32] = {
	"DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "09", "TS", "NP", "SS", "GP", "PF", "0f",
	"MF", "AC", "MC", "XM", "VE", "CP", "16", "17", "18", "19", "1a", "1b", "1c", "1d", "1e", "1f",
};

const char *excname(u32 vec)
{
	static char buf[8];
	if (vec < 32)
		return names[vec];
	buf[0] = 'i'; buf[1] = 'n'; buf[2] = 't';
	buf[3] = "0123456789abcdef"[(vec >> 4) & 15];
	buf[4] = "0123456789abcdef"[vec & 15];
	buf[5] = 0;
	return buf;
}

static int has_err(u32 v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17;
}

/* An address relative to a base when near it ("+0x3"), absolute otherwise. */
u32 rel(u32 addr, u32 base)
{
	return addr - base;
}

void outcome(void)
{
	if (R.vec == VEC_DONE) {
		printf("ok");
		return;
	}
	printf("#%s", excname(R.vec));
	if (has_err(R.vec))
		printf("(%04x)", R.err);
	if (R.vec != 8) {
		u32 off = R.eip - (u32)cur_fn;
		if (off < 0x1000)
			printf(" at +%x", off);
		else
			printf(" at %08x", R.eip);
	}
}

void chk(const char *name, int cpl, void (*fn)(void))
{
	run_at(cpl, fn);
	printf("%s: ", name);
	outcome();
	printf("\n");
}

void pstack(u32 esp)
{
	static const struct { const char *name; char *top; u32 size; } st[] = {
		{ "boot", boot_stack_top, 16384 }, { "s1", stack1_top, 8192 }, { "s3", stack3_top, 8192 },
		{ "i0", istack0_top, 8192 }, { "i1", istack1_top, 8192 },
	};
	for (u32 i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		u32 t = (u32)st[i].top;
		if (esp <= t && esp > t - st[i].size) {
			printf("%s-%x", st[i].name, t - esp);
			return;
		}
		if (esp > t && esp <= t + 16) {
			printf("%s+%x", st[i].name, esp - t);
			return;
		}
	}
	printf("%08x", esp);
}

void segs(void)
{
	printf(" ds=%04x es=%04x fs=%04x gs=%04x", R.ds, R.es, R.fs, R.gs);
}

u32 caller_esp;

CODE(gh_noerr, "mov $0xffffffff, %ebp; mov %esp, %eax; mov 0(%esp), %ebx; mov 4(%esp), %ecx;"
	"mov 8(%esp), %edx; mov 12(%esp), %esi; mov 16(%esp), %edi; int $0x80");
CODE(gh_err, "mov 0(%esp), %ebp; mov %esp, %eax; mov 4(%esp), %ebx; mov 8(%esp), %ecx;"
	"mov 12(%esp), %edx; mov 16(%esp), %esi; mov 20(%esp), %edi; int $0x80");

/* After a run that went through gh_noerr/gh_err: where the handler ran and
   what frame it got.  The handler's CPL and stack come from the int $0x80
   frame, its IF from the eflags int $0x80 saved. */
void gate_report(const char *name)
{
	printf("%s: ", name);
	if (R.vec != VEC_DONE) {
		outcome();
		printf("\n");
		return;
	}
	u32 hcpl = R.cs & 3, ccpl = R.ecx & 3;
	printf("handler cs=%04x ss=%04x esp=", R.cs, R.ss);
	pstack(R.eax);
	printf(" if=%d", (R.eflags >> 9) & 1);
	if (R.ebp != 0xffffffff)
		printf(" err=%04x", R.ebp);
	printf(" | frame eip=+%x cs=%04x eflags=%08x", R.ebx - (u32)cur_fn, R.ecx & 0xffff, R.edx);
	if (hcpl != ccpl) {
		printf(" esp=");
		pstack(R.esi);
		printf(" ss=%04x", R.edi & 0xffff);
	} else {
		printf(" size=%x", caller_esp - R.eax);
	}
	printf("\n");
}
