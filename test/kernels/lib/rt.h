/* Shared runtime of the CPU test kernels (see ../README.md). */
#ifndef RT_H
#define RT_H

/* GDT layout shared by every kernel. */
#define SEL_KCODE   0x08        /* ring 0 code, flat */
#define SEL_KDATA   0x10        /* ring 0 data, flat */
#define SEL_R1CODE  0x19        /* ring 1 code (DPL 1), flat, RPL 1: how lguest runs a guest kernel */
#define SEL_R1DATA  0x21        /* ring 1 data (DPL 1), flat, RPL 1 */
#define SEL_UCODE   0x2b        /* ring 3 code, flat */
#define SEL_UDATA   0x33        /* ring 3 data, flat */
#define SEL_TSS     0x38        /* 32-bit TSS */
#define GDT_FIRST_FREE 8        /* entries 8.. are for the tests */
#define GDT_ENTRIES 64

#define VEC_DONE    0x80        /* int $0x80 (DPL 3 gate to ring 0) ends a run */

#ifndef __ASSEMBLER__
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct frame {
	u32 gs, fs, es, ds;
	u32 edi, esi, ebp, esp_, ebx, edx, ecx, eax;
	u32 vec, err;
	u32 eip, cs, eflags;
	u32 esp, ss;            /* only present when the privilege changed */
};

/* What ended the last run: the vector taken (VEC_DONE for a clean end) and
   the state the CPU saved. */
struct rec {
	u32 vec, err, eip, cs, eflags;
	u32 outer;              /* frame had ss:esp (privilege change) */
	u32 esp, ss;            /* stack at the event (from the frame if outer) */
	u32 eax, ecx, edx, ebx, ebp, esi, edi;
	u32 ds, es, fs, gs;
	u32 cr2;
};
extern volatile struct rec R;

struct regs { u32 eax, ecx, edx, ebx, ebp, esi, edi; };
extern struct regs run_regs;     /* registers at the start of a run (zero by default) */
extern u32 run_eflags;           /* eflags at the start of a run (2 by default) */
extern char *cur_fn;

struct tss {
	u16 link, _r0;
	u32 esp0; u16 ss0, _r1;
	u32 esp1; u16 ss1, _r2;
	u32 esp2; u16 ss2, _r3;
	u32 cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
	u16 es, _r4, cs, _r5, ss, _r6, ds, _r7, fs, _r8, gs, _r9, ldt, _r10;
	u16 trap, iomap;
	u8 iobitmap[0x80 + 1];   /* ports 0..0x3ff, then the 0xff terminator */
} __attribute__((packed));
#define TSS_IOMAP_OFF 104
#define TSS_LIMIT (104 + 0x80)    /* covers the bitmap and its terminator */

extern u64 gdt[GDT_ENTRIES];
extern u64 idt[256];
extern struct tss tss;
extern char boot_stack_top[], stack1_top[], stack3_top[], istack0_top[], istack1_top[];
extern char isr_stubs[];
#define ISR(v) ((u32)isr_stubs + 16 * (v))

/* runtime */
void printf(const char *fmt, ...);
void exit(u32 value) __attribute__((noreturn));
int run_at(int cpl, void (*fn)(void));
void run_return(void) __attribute__((noreturn));
void kmain(void);

/* descriptors */
u64 mkseg(u32 base, u32 limit, u32 access, u32 flags);
void set_gate(int vec, u32 sel, u32 off, u32 type, u32 dpl);  /* type 0xe interrupt, 0xf trap */
void reset_gate(int vec);                     /* back to the default stub */
void load_gdt(void);
void load_idt(u32 limit);
void reset_tss(void);

/* reporting */
void outcome(void);                 /* "ok" or "#GP(0010) at +0x3" */
void chk(const char *name, int cpl, void (*fn)(void));   /* run fn and print "name: outcome" */
const char *excname(u32 vec);
u32 rel(u32 addr, u32 base);
void pstack(u32 esp);               /* "s3-0x14": a stack pointer relative to the top of the stack it is in */
void segs(void);                    /* " ds=.. es=.. fs=.. gs=.." from R */
extern u32 caller_esp;              /* a snippet stores its esp here before an int (see gate_report) */
void gate_report(const char *name);
/* Gate-probe handlers: load the frame into registers and end the run with
   int $0x80: eax = esp at entry, ebx/ecx/edx = eip/cs/eflags,
   esi/edi = esp/ss (meaningful only after a privilege change), ebp = error
   code (gh_err) or 0xffffffff (gh_noerr). */
extern void gh_noerr(void), gh_err(void);

/* port and register helpers */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
#define RDCR(n) ({ u32 _v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(_v)); _v; })
#define WRCR(n, v) __asm__ volatile("mov %0, %%cr" #n :: "r"((u32)(v)) : "memory")

/* A code snippet: a label, the body, then int $0x80 to end the run. */
#define SNIP(name, body) \
	extern void name(void); \
	__asm__(".pushsection .text\n\t.align 16\n\t.globl " #name "\n" #name ":\n\t" body "\n\tint $0x80\n\t.popsection")
/* A bare label + body, nothing appended (gate targets, etc.) */
#define CODE(name, body) \
	extern void name(void); \
	__asm__(".pushsection .text\n\t.align 16\n\t.globl " #name "\n" #name ":\n\t" body "\n\t.popsection")
#define STR(x) #x
#define XSTR(x) STR(x)
#endif
#endif
