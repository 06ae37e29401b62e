	.section .note.GNU-stack,"",@progbits
/* Multiboot (v1) entry point shared by all test kernels. */
#include "rt.h"

	.section .multiboot, "a"
	.align 4
	.long 0x1BADB002                /* magic */
	.long 0x00000003                /* flags: page-align modules, memory info */
	.long -(0x1BADB002 + 0x00000003)

	.text
	.globl _start
_start:
	cli
	cld
	/* The multiboot loader leaves flat 32-bit segments; zero .bss first
	   (it holds the stack, so nothing is pushed before this). */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl $boot_stack_top, %esp
	pushl $0
	popfl
	call rt_init
	call kmain
	pushl $0
	call exit
1:	jmp 1b

/* ---- interrupt stubs: one per vector, 16 bytes apart, all into isr_common ---- */
	.globl isr_stubs
	.align 16
isr_stubs:
	.set vec, 0
	.rept 256
	.align 16
	.if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	pushl $vec
	.else
	pushl $0
	pushl $vec
	.endif
	jmp isr_common
	.set vec, vec+1
	.endr

/* Frame layout (struct frame in rt.h): gs fs es ds edi esi ebp esp ebx edx
   ecx eax vec err eip cs eflags [esp ss] */
isr_common:
	pushal
	pushl %ds
	pushl %es
	pushl %fs
	pushl %gs
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	pushl %esp
	call trap
	addl $4, %esp
	popl %gs
	popl %fs
	popl %es
	popl %ds
	popal
	addl $8, %esp
	iretl

/* int run_at(int cpl, void (*fn)(void)): run fn at CPL 0, 1 or 3 (entered
   by iret with eflags = run_eflags and registers from run_regs); it ends
   with int $0x80 or an exception, and trap() comes back here through
   run_return. */
	.globl run_at
run_at:
	pushl %ebp
	pushl %ebx
	pushl %esi
	pushl %edi
	movl %esp, run_saved_esp
	movl $1, in_run
	movl 20(%esp), %ecx
	movl 24(%esp), %edx
	movl %edx, cur_fn
	cmpl $0, %ecx
	jne 1f
	pushl run_eflags
	pushl $SEL_KCODE
	pushl %edx
	jmp 9f
1:	cmpl $1, %ecx
	jne 3f
	movl $SEL_R1DATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	pushl $SEL_R1DATA
	pushl $stack1_top
	pushl run_eflags
	pushl $SEL_R1CODE
	pushl %edx
	jmp 9f
3:	movl $SEL_UDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	pushl $SEL_UDATA
	pushl $stack3_top
	pushl run_eflags
	pushl $SEL_UCODE
	pushl %edx
9:	movl run_regs+4, %ecx
	movl run_regs+8, %edx
	movl run_regs+12, %ebx
	movl run_regs+16, %ebp
	movl run_regs+20, %esi
	movl run_regs+24, %edi
	movl run_regs+0, %eax
	iretl

	.globl run_return
run_return:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %fs
	movl %eax, %gs
	movl %eax, %ss
	movl run_saved_esp, %esp
	pushl $2
	popfl
	movl $0, in_run
	popl %edi
	popl %esi
	popl %ebx
	popl %ebp
	ret

	.bss
	.align 16
	.space 16384
	.globl boot_stack_top
boot_stack_top:
	.space 8192
	.globl stack1_top
stack1_top:
	.space 8192
	.globl stack3_top
stack3_top:
	.space 8192
	.globl istack0_top
istack0_top:
	.space 8192
	.globl istack1_top
istack1_top:
	.space 16
