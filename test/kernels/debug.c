/* debug.elf: the debug registers DR0-DR7. Instruction breakpoints (a fault
   before the instruction, RF to get past one), data breakpoints on writes
   and on reads and writes with lengths 1, 2 and 4 (a trap after the
   instruction), DR6's status bits, DR7's enables and general detect, DR4
   and DR5, and RF in the frames of faults and traps.  See README.md. */
#include "rt.h"

/* The watched words, with room below them for the frames a #DB pushes
   when a snippet's stack is moved onto them (d_push). */
struct { u32 stack[240]; u32 w[4]; } dbg_area __attribute__((aligned(16)));
#define watched (dbg_area.w)
#define W "dbg_area+960"
volatile u32 db_count;

#define DR7_L(n)      (1u << (2 * (n)))
#define DR7_G(n)      (2u << (2 * (n)))
#define DR7_RW(n, v)  ((u32)(v) << (16 + 4 * (n)))
#define DR7_LEN(n, v) ((u32)(v) << (18 + 4 * (n)))
#define RW_EXEC 0
#define RW_WRITE 1
#define RW_READWRITE 3
#define LEN1 0
#define LEN2 1
#define LEN4 3
#define DR7_GD (1u << 13)

#define SETDR(n, v) __asm__ volatile("mov %0, %%dr" #n :: "r"((u32)(v)))
#define GETDR(n) ({ u32 _v; __asm__ volatile("mov %%dr" #n ", %0" : "=r"(_v)); _v; })

static void clear_drs(void)
{
	SETDR(7, 0);
	SETDR(0, 0);
	SETDR(1, 0);
	SETDR(2, 0);
	SETDR(3, 0);
	SETDR(6, 0);
}

/* Labels inside the snippets, for the breakpoint addresses. */
extern char x_bp[], x_rf_bp[], x_loop_bp[], x_resume_bp[];

/* Instruction breakpoints: x_bp is the third instruction. */
SNIP(x_exec, "nop; nop; .globl x_bp; x_bp: nop; mov $1, %eax");
/* A breakpoint on the second byte of an instruction never matches. */
SNIP(x_mid, "mov $0x12345678, %eax; nop");
/* iret with RF set to the breakpoint: RF lets that one instruction pass. */
SNIP(x_rf, "pushfl; orl $0x10000, (%esp); pushl %cs; pushl $x_rf_bp; iret; .globl x_rf_bp; x_rf_bp: nop; nop");
/* RF is cleared once the instruction completes: the second visit traps. */
SNIP(x_rf_loop, "mov $2, %ecx; pushfl; orl $0x10000, (%esp); pushl %cs; pushl $x_loop_bp; iret;"
	" .globl x_loop_bp; x_loop_bp: dec %ecx; jnz x_loop_bp");
/* A #DB handler that sets RF in its frame and returns: the program carries on. */
CODE(h_db_resume, "incl db_count; orl $0x10000, 8(%esp); iret");
/* eflags as the next instruction sees it */
SNIP(x_resume, "nop; .globl x_resume_bp; x_resume_bp: pushfl; popl %eax; nop");

/* Data breakpoints on watched[1] (and around it). */
SNIP(d_write4, "movl $0x11111111, " W "+4; mov $1, %eax");
SNIP(d_write_byte3, "movb $0x22, " W "+7; mov $1, %eax");
SNIP(d_write_after, "movb $0x33, " W "+8; mov $1, %eax");
SNIP(d_write_before, "movb $0x44, " W "+3; mov $1, %eax");
SNIP(d_write_overlap, "movl $0x55555555, " W "+1; mov $1, %eax");
SNIP(d_read4, "movl " W "+4, %ebx; mov $1, %eax");
SNIP(d_read_byte, "movb " W "+6, %bl; mov $1, %eax");
SNIP(d_rmw, "incl " W "+4; mov $1, %eax");
SNIP(d_push, "mov %esp, %esi; mov $" W "+8, %esp; pushl $0x66666666; mov %esi, %esp; mov $1, %eax");
SNIP(d_rep, "mov $" W ", %edi; mov $16, %ecx; mov $0x88, %al; cld; rep stosb; mov $1, %eax");
SNIP(d_tf, "pushfl; orl $0x100, (%esp); popfl; movl $0x77777777, " W "+4; nop");

/* General detect: any mov to or from a debug register faults. */
SNIP(g_read, "mov %dr0, %eax");
SNIP(g_write, "mov %eax, %dr1");
SNIP(g_dr7, "mov %dr7, %eax");

/* DR4 and DR5 with CR4.DE set */
SNIP(de_dr4, "mov %dr4, %eax");
SNIP(de_dr5, "mov %eax, %dr5");

/* RF in the frames of faults and traps */
SNIP(rf_ud, "ud2");
SNIP(rf_gp, "mov $0x1234, %ax; mov %ax, %ds");
SNIP(rf_de, "xor %ecx, %ecx; div %ecx");
SNIP(rf_bp, "int3");

static void report(const char *name)
{
	u32 dr6 = GETDR(6), dr7 = GETDR(7);
	SETDR(7, 0);
	printf("%s: ", name);
	outcome();
	printf(" dr6=%08x dr7=%08x rf=%d", dr6, dr7, (R.eflags >> 16) & 1);
}

static void exec_bp(const char *name, int cpl, void (*fn)(void), u32 addr, u32 dr7)
{
	clear_drs();
	SETDR(0, addr);
	SETDR(7, dr7);
	run_at(cpl, fn);
	report(name);
	printf(" eax=%x\n", R.eax);
}

static void registers(void)
{
	SETDR(7, 0);
	printf("dr7 <- 0: %08x\n", GETDR(7));
	SETDR(6, 0);
	printf("dr6 <- 0: %08x\n", GETDR(6));
	SETDR(6, 0xffffffff);
	printf("dr6 <- ffffffff: %08x\n", GETDR(6));
	SETDR(0, 0x12345678);
	SETDR(1, 0x9abcdef0);
	SETDR(2, 0xfffffffc);
	SETDR(3, 0x00000001);
	printf("dr0-dr3: %08x %08x %08x %08x\n", GETDR(0), GETDR(1), GETDR(2), GETDR(3));
	SETDR(7, 0x00ff0000);
	printf("dr7 <- 00ff0000: %08x\n", GETDR(7));
	SETDR(7, 0);
	/* CR4.DE = 0: DR4 and DR5 are DR6 and DR7 */
	SETDR(6, 0);
	SETDR(4, 0x4001);
	printf("dr4 -> dr6: %08x\n", GETDR(6));
	SETDR(5, 0x00000003);
	printf("dr5 -> dr7: %08x, dr5 reads %08x\n", GETDR(7), GETDR(5));
	SETDR(7, 0);
	SETDR(6, 0);
	WRCR(4, RDCR(4) | 8);
	chk("cr4.de=1 mov dr4", 0, de_dr4);
	chk("cr4.de=1 mov to dr5", 0, de_dr5);
	WRCR(4, RDCR(4) & ~8u);
}

static void instruction_breakpoints(void)
{
	static const int cpls[] = { 0, 1, 3 };
	for (int c = 0; c < 3; c++) {
		printf("cpl%d ", cpls[c]);
		exec_bp("exec l0", cpls[c], x_exec, (u32)x_bp, DR7_L(0));
	}
	exec_bp("exec g0", 0, x_exec, (u32)x_bp, DR7_G(0));
	exec_bp("exec disabled", 0, x_exec, (u32)x_bp, 0);
	exec_bp("exec mid-instruction", 0, x_mid, (u32)x_mid + 1, DR7_L(0));
	exec_bp("exec first instruction", 3, x_exec, (u32)x_exec, DR7_L(0));
	exec_bp("exec rf set by iret", 0, x_rf, (u32)x_rf_bp, DR7_L(0));
	exec_bp("exec rf for one instruction", 0, x_rf_loop, (u32)x_loop_bp, DR7_L(0));
	printf(" ecx=%x\n", R.ecx);

	/* DR3 with L3, and two breakpoints on one instruction */
	clear_drs();
	SETDR(3, (u32)x_bp);
	SETDR(7, DR7_L(3));
	run_at(0, x_exec);
	report("exec l3");
	printf("\n");
	clear_drs();
	SETDR(0, (u32)x_bp);
	SETDR(2, (u32)x_bp);
	SETDR(7, DR7_L(0) | DR7_L(2));
	run_at(0, x_exec);
	report("exec l0+l2 same address");
	printf("\n");

	/* a handler that resumes with RF */
	for (int c = 0; c < 3; c += 2) {
		clear_drs();
		db_count = 0;
		set_gate(1, SEL_KCODE, (u32)h_db_resume, 0xe, 0);
		SETDR(0, (u32)x_resume_bp);
		SETDR(7, DR7_L(0));
		run_at(cpls[c], x_resume);
		report(cpls[c] ? "cpl3 resume with rf" : "cpl0 resume with rf");
		printf(" count=%d eflags seen=%08x\n", db_count, R.eax);
		reset_gate(1);
	}
}

static void data_bp(const char *name, int cpl, void (*fn)(void), u32 addr, u32 rw, u32 len)
{
	clear_drs();
	watched[0] = watched[1] = watched[2] = watched[3] = 0;
	SETDR(1, addr);
	SETDR(7, DR7_L(1) | DR7_RW(1, rw) | DR7_LEN(1, len));
	run_at(cpl, fn);
	report(name);
	printf(" eax=%x ebx=%x watched=%08x %08x %08x\n", R.eax, R.ebx, watched[0], watched[1], watched[2]);
}

static void data_breakpoints(void)
{
	u32 w = (u32)&watched[1];
	data_bp("write4 w4", 0, d_write4, w, RW_WRITE, LEN4);
	data_bp("cpl1 write4 w4", 1, d_write4, w, RW_WRITE, LEN4);
	data_bp("cpl3 write4 w4", 3, d_write4, w, RW_WRITE, LEN4);
	data_bp("byte+3 w4", 0, d_write_byte3, w, RW_WRITE, LEN4);
	data_bp("byte after w4", 0, d_write_after, w, RW_WRITE, LEN4);
	data_bp("byte before w4", 0, d_write_before, w, RW_WRITE, LEN4);
	data_bp("overlapping dword w4", 0, d_write_overlap, w, RW_WRITE, LEN4);
	data_bp("read4 w4", 0, d_read4, w, RW_WRITE, LEN4);
	data_bp("read4 rw4", 0, d_read4, w, RW_READWRITE, LEN4);
	data_bp("cpl3 read4 rw4", 3, d_read4, w, RW_READWRITE, LEN4);
	data_bp("read byte+2 rw4", 0, d_read_byte, w, RW_READWRITE, LEN4);
	data_bp("read byte+2 rw1 at +3", 0, d_read_byte, w + 3, RW_READWRITE, LEN1);
	data_bp("read byte+2 rw1 at +2", 0, d_read_byte, w + 2, RW_READWRITE, LEN1);
	data_bp("read byte+2 rw2 at +2", 0, d_read_byte, w + 2, RW_READWRITE, LEN2);
	data_bp("read byte+2 rw2 at +0", 0, d_read_byte, w, RW_READWRITE, LEN2);
	data_bp("write4 w1 at +3", 0, d_write4, w + 3, RW_WRITE, LEN1);
	data_bp("write4 w2 at +2", 0, d_write4, w + 2, RW_WRITE, LEN2);
	data_bp("byte+3 w2 at +0", 0, d_write_byte3, w, RW_WRITE, LEN2);
	data_bp("inc w4", 0, d_rmw, w, RW_WRITE, LEN4);
	data_bp("inc rw4", 0, d_rmw, w, RW_READWRITE, LEN4);
	data_bp("push w4", 0, d_push, w, RW_WRITE, LEN4);
	data_bp("push w4 at +4", 0, d_push, w + 4, RW_WRITE, LEN4);
	data_bp("single step and write w4", 0, d_tf, w, RW_WRITE, LEN4);
	data_bp("rep stosb over w4", 0, d_rep, w, RW_WRITE, LEN4);
	printf(" ecx=%x edi=+%x\n", R.ecx, R.edi - (u32)watched);

	/* B0-B3 report the breakpoints that matched this time */
	clear_drs();
	SETDR(0, (u32)x_bp);
	SETDR(1, w);
	SETDR(7, DR7_L(0) | DR7_L(1) | DR7_RW(1, RW_WRITE) | DR7_LEN(1, LEN4));
	run_at(0, d_write4);
	report("write after nothing");
	printf("\n");
	SETDR(7, DR7_L(0) | DR7_L(1) | DR7_RW(1, RW_WRITE) | DR7_LEN(1, LEN4));
	run_at(0, x_exec);
	report("exec after write, dr6 not cleared by software");
	printf("\n");
}

static void general_detect(void)
{
	clear_drs();
	SETDR(7, DR7_GD);
	run_at(0, g_read);
	report("gd mov from dr0");
	printf("\n");
	clear_drs();
	SETDR(7, DR7_GD | DR7_L(0));
	run_at(0, g_write);
	report("gd mov to dr1");
	printf("\n");
	clear_drs();
	SETDR(7, DR7_GD);
	run_at(0, g_dr7);
	report("gd mov from dr7");
	printf("\n");
	/* At CPL 3 the privilege check comes first. GD stays set, and only a
	   #DB clears it: the next mov in ring 0 takes one (nothing printed). */
	clear_drs();
	SETDR(7, DR7_GD);
	chk("gd cpl3 mov from dr0", 3, g_read);
	run_at(0, g_read);
	clear_drs();
}

static void rf_check(const char *name, int cpl, void (*fn)(void))
{
	run_at(cpl, fn);
	printf("%s: ", name);
	outcome();
	printf(" rf=%d\n", (R.eflags >> 16) & 1);
}

static void resume_flag(void)
{
	clear_drs();
	rf_check("rf in the frame of ud2", 0, rf_ud);
	rf_check("rf in the frame of a bad mov ds", 0, rf_gp);
	rf_check("rf in the frame of div by zero", 3, rf_de);
	rf_check("rf in the frame of int3", 0, rf_bp);
}

void kmain(void)
{
	printf("debug.elf\n");
	registers();
	instruction_breakpoints();
	data_breakpoints();
	general_detect();
	resume_flag();
	clear_drs();
	printf("done\n");
}
