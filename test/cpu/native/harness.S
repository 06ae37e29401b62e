# lguest.ts native test-vector harness (x86-64 host side).
#
# run_vec: saves the C callee-saved registers, loads the eight GPRs and
# RFLAGS from h_load, switches RSP to the test value and jumps to the
# instruction under test.  The code area around the instruction is filled
# with int3 (0xCC); the SIGTRAP handler (gen.c) records the state from the
# signal context and redirects the sigreturn to h_resume, which restores the
# C state and returns from run_vec.
#
# h_load layout (8-byte slots):
#   0 rax, 1 rcx, 2 rdx, 3 rbx, 4 rbp, 5 rsi, 6 rdi, 7 rflags, 8 rsp, 9 target

        .data
        .align 16
        .globl h_load
h_load: .zero 80
        .globl h_host_rsp
h_host_rsp:
        .quad 0

        .text
        .globl run_vec
        .type run_vec, @function
run_vec:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        mov %rsp, h_host_rsp(%rip)
        lea h_load(%rip), %rsp
        pop %rax
        pop %rcx
        pop %rdx
        pop %rbx
        pop %rbp
        pop %rsi
        pop %rdi
        popfq
        mov h_load+64(%rip), %rsp
        jmp *h_load+72(%rip)

        .globl h_resume
        .type h_resume, @function
h_resume:
        mov h_host_rsp(%rip), %rsp
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        cld
        ret

        .section .note.GNU-stack,"",@progbits
