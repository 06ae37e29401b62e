/* lguest.ts native test-vector generator: shared core (see README.md). */
#ifndef CORE_H
#define CORE_H
#include <stdint.h>
#include <stdio.h>

#define MEM_BASE   0x10000000u
#define MEM_SIZE   0x00010000u
#define CODE_BASE  0x20000000u
#define CODE_SIZE  0x00200000u
#define X_ADDR     (CODE_BASE + 0x00100000u)   /* where the instruction (conceptually) starts */
#define STACK_TOP  (MEM_BASE + 0xC000u)        /* default ESP region */

#define F_CF 0x001u
#define F_PF 0x004u
#define F_AF 0x010u
#define F_ZF 0x040u
#define F_SF 0x080u
#define F_DF 0x400u
#define F_OF 0x800u
#define F_ARITH 0x8D5u
#define F_REC   (F_ARITH | F_DF | 2u)   /* recorded EFLAGS bits */

enum { EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI };

typedef struct {
    char form[96];
    uint8_t c[40]; int cl;      /* i386 encoding (what the vector shows as "code") */
    uint8_t n[40]; int nl;      /* bytes actually executed natively (without 0x67) */
    int need67;                 /* prefix the native bytes with 0x67 */
    int ndiff;                  /* native bytes differ from i386 bytes beyond the 0x67 */
    uint32_t r[8];
    uint32_t fl;
    uint32_t used;              /* registers whose value is fixed by an operand */
    uint32_t resv;              /* registers reserved for implicit operands */
    uint32_t rin_a[12], rin_n[12]; int nrin;   /* in.mem regions */
    uint32_t undef;             /* SDM-undefined EFLAGS bits for this vector */
    uint32_t undef_out;         /* bit i: output register i undefined; bit 8: memory undefined */
    int relreg;                 /* register holding a code address relative to insn start, or -1 */
    uint32_t relmem;            /* address of a dword holding a relative code address, or 0 */
} V;

extern uint8_t vmem[MEM_SIZE];

/* random */
void rseed(const char *s);
uint32_t rnd(void);
uint32_t rndn(uint32_t n);

/* vector construction */
void vbegin(V *v, const char *form);
void put(V *v, uint8_t b);
void put_c(V *v, uint8_t b);
void put_n(V *v, uint8_t b);
void put_imm(V *v, uint32_t x, int n);
int  pick_op(V *v, int sz);                 /* operand register (8-bit: 0..7 = al..bh) */
int  pick_free(V *v, uint32_t excl);        /* free register for addressing, -1 if none */
void setr(V *v, int reg, int sz, uint32_t val);
uint32_t getr(V *v, int reg, int sz);
void modrm_reg(V *v, int regf, int rm);
void modrm_mem(V *v, int regf, uint32_t A);
void maybe_lock(V *v);                      /* 1/6: prepend F0 (memory RMW forms only) */
void region(V *v, uint32_t a, uint32_t n);
void wmem(uint32_t a, uint32_t val, int bytes);
uint32_t rmem(uint32_t a, int bytes);
uint32_t rand_addr(void);
void run(V *v);

/* values */
uint32_t msk(int sz);
uint32_t edge(int sz, int i);
#define NEDGE 10
uint32_t rval(int sz);
uint32_t rflags(void);
void fmt_form(char *out, const char *tmpl, int mem);

/* output management */
void group_begin(const char *name);
void group_end(void);
void write_manifest(const char *dir);

/* generator groups */
void gen_arith(void);
void gen_muldiv(void);
void gen_shift(void);
void gen_bits(void);
void gen_move(void);
void gen_misc(void);
void gen_string(void);
void gen_stack(void);
void gen_branch(void);
void gen_hint(void);

extern const char *SZN[];
#endif

/* A ModRM instruction shape: [66] op... modrm [imm]. */
typedef struct {
    int p66;
    uint8_t op[3]; int opl;
    int regf;     /* -1: ModRM.reg is a register operand; else the /digit */
    int sz;       /* r/m operand size */
    int rsz;      /* reg operand size */
    int mem;      /* r/m is memory */
    int immn;     /* immediate bytes */
} Shape;
typedef struct { int rm, reg; uint32_t A; } ShapeOut;
/* Emit and set values.  A==0: random address.  Caller did vbegin and
 * reserved/set implicit registers first. */
ShapeOut shape(V *v, const Shape *s, uint32_t rmval, uint32_t regval, uint32_t imm, uint32_t A);
Shape S(int p66, int op0, int op1, int opl, int regf, int sz, int rsz, int mem, int immn);
