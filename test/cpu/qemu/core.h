/* lguest.ts QEMU test-vector generator (i386 guest under qemu-i386): shared
 * core.  See README.md.  Adapted from test/cpu/native/ (our own code) for a
 * real 32-bit process: no "exec" encodings, segment setups, code at 0. */
#ifndef QCORE_H
#define QCORE_H
#include <stdint.h>
#include <stdio.h>

#define MEM_BASE   0x10000000u
#define MEM_SIZE   0x00020000u               /* 128 KiB: room for 16-bit segments */
#define CODE_BASE  0x20000000u
#define CODE_SIZE  0x00200000u
#define X_ADDR     (CODE_BASE + 0x00100000u) /* default instruction start */
#define LOW_SIZE   0x00010000u               /* linear 0..64K, int3-filled: code at 0 */
#define STACK_TOP  (MEM_BASE + 0xC000u)

#define F_CF 0x001u
#define F_PF 0x004u
#define F_AF 0x010u
#define F_ZF 0x040u
#define F_SF 0x080u
#define F_DF 0x400u
#define F_OF 0x800u
#define F_ARITH 0x8D5u
#define F_REC   (F_ARITH | F_DF | 2u)

enum { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI };
enum { ES, CS, SS, DS, FS, GS };

/* user-mode selectors under qemu-i386 linux-user (same as Linux i386) */
#define SEL_CODE 0x23
#define SEL_DATA 0x2B

/* our LDT (modify_ldt), see core.c */
#define LDT_N 16
typedef struct {
    uint32_t base, limit;     /* limit: byte-granular effective limit */
    int size;                 /* 16 or 32 (D/B bit) */
    int kind;                 /* 0 data rw, 1 data ro, 2 code exec/read, 3 code exec-only, 4 not present */
} LdtEnt;
extern const LdtEnt LDT[LDT_N];
#define LDT_SEL(i) ((uint16_t)(((i) << 3) | 7))
/* 16-bit LDT data segments (limit 0xFFFF, base inside the buffer): entries 1..8 */
#define LDT16_FIRST 1
#define LDT16_N 8

typedef struct {
    char form[96];
    uint8_t c[40]; int cl;
    uint32_t r[8];
    uint32_t fl;
    uint32_t used, resv;
    uint32_t rin_a[16], rin_n[16]; int nrin;
    uint32_t undef;
    uint32_t undef_out;       /* bit i: register i undefined; bit 8: memory */
    uint32_t x;               /* linear address of the instruction (X_ADDR, or 0) */
    int relreg;               /* register holding a code address (relative to x), or -1 */
    uint32_t reld[4]; int nreld;   /* dwords in memory holding code addresses (relative to x) */
    int segset;               /* bit s: segment register s is part of the vector (in/out "seg") */
    uint16_t sel[6];
    int desc;                 /* instruction may load a segment register: expect faults */
    int expect_exc;           /* exception vector this vector is built to raise, or -1 */
    int expect_err;           /* error code the SDM gives, or -1 */
    int npvec;                /* vector to report for SIGBUS (11 #NP or 12 #SS) */
} V;

extern uint8_t vmem[MEM_SIZE];

void rseed(const char *s);
uint32_t rnd(void);
uint32_t rndn(uint32_t n);

void vbegin(V *v, const char *form);
void put(V *v, uint8_t b);
void put_imm(V *v, uint32_t x, int n);
void prefix_front(V *v, uint8_t p);
int  pick_op(V *v, int sz);
int  pick_free(V *v, uint32_t excl);
void setr(V *v, int reg, int sz, uint32_t val);
uint32_t getr(V *v, int reg, int sz);
void modrm_reg(V *v, int regf, int rm);
void modrm_mem32(V *v, int regf, uint32_t A);     /* random 32-bit addressing form, flat */
void region(V *v, uint32_t a, uint32_t n);
void wmem(uint32_t a, uint32_t val, int bytes);
uint32_t rmem(uint32_t a, int bytes);
uint32_t rand_addr(void);
void setseg(V *v, int s, uint16_t sel);
uint32_t seg_base(uint16_t sel);
void run(V *v);
uint16_t sel_ok(int s);
uint16_t sel_bad(int s, int k, int *vec, uint16_t *err);
extern uint32_t last_r[8], last_fl; extern int last_exc; extern int model_mismatch;
int parity8(uint32_t x);

uint32_t msk(int sz);
uint32_t edge(int sz, int i);
#define NEDGE 10
uint32_t rval(int sz);
uint32_t rflags(void);
void fmt_form(char *out, const char *tmpl, int mem);
uint32_t sext8(uint32_t x);

void group_begin(const char *name);
void group_end(void);

void gen_bcd(void);
void gen_stack32(void);
void gen_addr16(void);
void gen_misc(void);
void gen_p6(void);

extern const char *SZN[];
#endif
