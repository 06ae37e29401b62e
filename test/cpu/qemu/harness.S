# lguest.ts QEMU test-vector harness (i386 guest side, run under qemu-i386).
#
# run_vec saves the C registers, loads ES/FS/GS, EFLAGS, the GPRs, SS:ESP
# (lss) and DS from h_load/h_seg, then jumps to the instruction under test.
# DS is loaded last so that every load before it uses the flat data segment;
# the jump goes through a CS override.  The code around the instruction is
# int3 (0xCC); the signal handler (core.c) records the state from the signal
# context and returns into h_resume with flat segments.
#
# h_load (dwords): 0 eax, 1 ecx, 2 edx, 3 ebx, 4 esp, 5 ebp, 6 esi, 7 edi,
#                  8 eflags, 9 target
# h_seg  (dwords): es, cs (unused), ss, ds, fs, gs

        .data
        .align 16
        .globl h_load
h_load: .zero 40
        .globl h_seg
h_seg:  .zero 24
h_ssesp: .long 0, 0
        .globl h_host_esp
h_host_esp:
        .long 0

        .text
        .globl run_vec
        .type run_vec, @function
run_vec:
        pushal
        mov %esp, h_host_esp
        mov h_load+16, %eax
        mov %eax, h_ssesp
        mov h_seg+8, %eax
        mov %eax, h_ssesp+4
        movw h_seg+0, %es
        movw h_seg+16, %fs
        movw h_seg+20, %gs
        pushl h_load+32
        popfl
        mov h_load+0, %eax
        mov h_load+4, %ecx
        mov h_load+8, %edx
        mov h_load+12, %ebx
        mov h_load+20, %ebp
        mov h_load+24, %esi
        mov h_load+28, %edi
        lss h_ssesp, %esp
        movw h_seg+12, %ds
        jmp *%cs:h_load+36

        .globl h_resume
        .type h_resume, @function
h_resume:
        mov %cs:h_host_esp, %esp
        popal
        cld
        ret

        .section .note.GNU-stack,"",@progbits
