; A multiboot stub that lets v86 run the benchmark workload (bench/workload/
; workload.elf) unchanged, at its own addresses: bench/bench.ts builds an ELF
; of this stub (at 1 MiB) and the workload's segments. The stub installs an
; interrupt gate for int 0x80 whose handler does the workload's two system
; calls: write(fd, buffer, length) goes to the first serial port, and
; exit(status) prints "exit NN", then runs the workload again (its .bss
; cleared, a fresh stack) as many times as `runs` says, and halts. The
; second run finds v86's translations of the first already made: it
; measures the steady state. Assemble with:
;   nasm -f bin -o multiboot.bin multiboot.asm
bits 32
org 0x100000

header:
  dd 0x1badb002                 ; multiboot magic
  dd 0                          ; flags: nothing asked of the loader
  dd -0x1badb002                ; checksum
entry:
  dd 0                          ; the workload's entry point, filled in by bench.ts
runs:
  dd 1                          ; how many times to run it, filled in by bench.ts
bss:
  dd 0, 0                       ; the workload's .bss: address and length, filled in by bench.ts

start:
  cli
  lgdt [gdtr]                   ; our own flat segments: a gate needs a real selector
  jmp 0x08:.flat
.flat:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov fs, ax
  mov gs, ax
  mov eax, syscall
  mov [idt + 0x80 * 8], ax      ; offset 15..0
  mov word [idt + 0x80 * 8 + 2], 0x08
  mov word [idt + 0x80 * 8 + 4], 0x8e00 ; present, DPL 0, 32-bit interrupt gate
  shr eax, 16
  mov [idt + 0x80 * 8 + 6], ax  ; offset 31..16
  lidt [idtr]
again:
  mov esp, 0x90000
  jmp [entry]

syscall:
  cmp eax, 4
  jne .exit
  push esi
  push ecx
  push edx
  mov esi, ecx
  mov ecx, edx
  mov dx, 0x3f8
.byte:
  test ecx, ecx
  jz .written
  mov al, [esi]
  out dx, al
  inc esi
  dec ecx
  jmp .byte
.written:
  pop edx
  pop ecx
  pop esi
  mov eax, edx
  iret
.exit:
  mov dx, 0x3f8
  mov esi, exited
.text:
  mov al, [esi]
  test al, al
  jz .status
  out dx, al
  inc esi
  jmp .text
.status:
  mov eax, ebx
  shr al, 4
  call .digit
  mov eax, ebx
  call .digit
  mov al, 10
  out dx, al
  dec dword [runs]
  jz .halt
  cld
  xor eax, eax
  mov edi, [bss]
  mov ecx, [bss + 4]
  rep stosb
  jmp again
.halt:
  hlt
  jmp .halt
.digit:
  and al, 15
  add al, '0'
  cmp al, '9'
  jbe .out
  add al, 'a' - '9' - 1
.out:
  out dx, al
  ret

exited: db "exit ", 0
align 8
gdt:
  dq 0
  dq 0x00cf9a000000ffff         ; 0x08: code, base 0, 4 GiB, 32-bit
  dq 0x00cf92000000ffff         ; 0x10: data, base 0, 4 GiB
gdtr:
  dw 3 * 8 - 1
  dd gdt
align 4
idtr:
  dw 0x81 * 8 - 1
  dd idt
align 8
idt:
  times 0x81 * 8 db 0
