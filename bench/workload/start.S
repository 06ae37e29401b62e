/* Entry point of the benchmark workload.
 * Needs nothing from the initial stack: no argc/argv/envp/auxv.
 * The runner only has to point %esp at the top of a writable stack. */
	.text
	.globl	_start
	.type	_start, @function
_start:
	cld			/* string ops below assume DF=0 */
	xorl	%ebp, %ebp
	andl	$-16, %esp	/* keep the usual i386 ABI alignment */
	call	main
	movl	%eax, %ebx	/* exit status */
	movl	$1, %eax	/* __NR_exit */
	int	$0x80
	ud2			/* not reached */
	.size	_start, .-_start

	.section .note.GNU-stack,"",@progbits
