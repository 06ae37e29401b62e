/* arith group: add/or/adc/sbb/and/sub/xor/cmp, test, inc/dec, neg/not */
#include "core.h"
#include <string.h>

static const char *ALU[8] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};
#define NREG_RAND 28
#define NMEM 40

static uint32_t sext8(uint32_t x) { return (uint32_t)(int32_t)(int8_t)x; }

/* two-operand form with r/m and reg (or imm) operands.
 * dir 0: r/m is destination ("op r/m, r"), dir 1: reg is destination ("op r, r/m").
 * immk: 0 none, 1 imm of operand size, 2 imm8 sign-extended. */
static void binop(const char *tmpl, const Shape *sh, int dir, int immk, int cfboth, uint32_t undef)
{
    char name[96];
    fmt_form(name, tmpl, sh->mem);
    rseed(name);
    int sz = sh->sz;
    int nedge = sh->mem ? 0 : NEDGE * NEDGE;
    int n = sh->mem ? NMEM : nedge * (cfboth ? 2 : 1) + NREG_RAND;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < nedge * (cfboth ? 2 : 1)) {
            int k = i % nedge;
            a = edge(sz, k / NEDGE); b = edge(sz, k % NEDGE);
            if (immk == 2) b = sext8(edge(8, k % NEDGE)) & msk(sz);
            v.fl = (v.fl & ~F_CF) | (cfboth ? (uint32_t)(i >= nedge) : (v.fl & F_CF));
        } else {
            a = rval(sz); b = rval(sz);
            if (immk == 2) b = sext8(rval(8)) & msk(sz);
            if (!(i & 3)) b = (rndn(2) ? a : (uint32_t)-a) & msk(sz);   /* equal / negated operands */
        }
        uint32_t imm = immk ? b : 0;
        if (dir == 0) shape(&v, sh, a, b, imm, 0);
        else shape(&v, sh, b, a, imm, 0);
        if (sh->mem && dir == 0 && strncmp(name, "cmp", 3) && strncmp(name, "test", 4)) maybe_lock(&v);
        v.undef = undef;
        run(&v);
    }
}

/* accumulator, imm forms: 04/05 etc. */
static void accimm(const char *name, int p66, int op, int sz, uint32_t undef, int cfboth)
{
    rseed(name);
    int nedge = NEDGE * NEDGE;
    int n = nedge * (cfboth ? 2 : 1) + NREG_RAND;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < nedge * (cfboth ? 2 : 1)) {
            int k = i % nedge;
            a = edge(sz, k / NEDGE); b = edge(sz, k % NEDGE);
            v.fl = (v.fl & ~F_CF) | (cfboth ? (uint32_t)(i >= nedge) : (v.fl & F_CF));
        } else { a = rval(sz); b = rval(sz); }
        if (p66) put(&v, 0x66);
        put(&v, (uint8_t)op);
        put_imm(&v, b, sz / 8);
        setr(&v, EAX, sz, a);
        v.undef = undef;
        run(&v);
    }
}

/* unary F6/F7/FE/FF forms */
static void unop(const char *tmpl, int p66, int op, int digit, int sz, int mem)
{
    char name[96];
    fmt_form(name, tmpl, mem);
    rseed(name);
    Shape sh = S(p66, op, 0, 1, digit, sz, 0, mem, 0);
    int n = mem ? 24 : NEDGE * 2 + 30;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a = (!mem && i < NEDGE * 2) ? edge(sz, i % NEDGE) : rval(sz);
        if (!mem && i < NEDGE * 2) v.fl = i < NEDGE ? 2u : (F_ARITH | 2u);
        shape(&v, &sh, a, 0, 0, 0);
        if (mem) maybe_lock(&v);
        run(&v);
    }
}

/* inc/dec r16/r32 short forms 40+r / 48+r; executed natively as FF /0 /1 */
static void incdec_short(const char *name, int p66, int dec, int sz)
{
    rseed(name);
    for (int i = 0; i < NEDGE * 2 + 30; i++) {
        V v; vbegin(&v, name);
        int r = rndn(8);
        uint32_t a = i < NEDGE * 2 ? edge(sz, i % NEDGE) : rval(sz);
        if (i < NEDGE * 2) v.fl = i < NEDGE ? 2u : (F_ARITH | 2u);
        setr(&v, r, sz, a);
        if (p66) put(&v, 0x66);
        put_c(&v, (uint8_t)((dec ? 0x48 : 0x40) + r));
        put_n(&v, 0xFF); put_n(&v, (uint8_t)(0xC0 | (dec << 3) | r));
        v.ndiff = 1;
        run(&v);
    }
}

void gen_arith(void)
{
    char t[96];
    for (int k = 0; k < 8; k++) {
        const char *m = ALU[k];
        int cf = (k == 2 || k == 3);
        uint32_t u = (k == 1 || k == 4 || k == 6) ? F_AF : 0;
        for (int mem = 0; mem < 2; mem++) {
            Shape s;
            sprintf(t, "%s r/m8, r8", m);   s = S(0, k * 8 + 0, 0, 1, -1, 8, 8, mem, 0);   binop(t, &s, 0, 0, cf, u);
            sprintf(t, "%s r/m16, r16", m); s = S(1, k * 8 + 1, 0, 1, -1, 16, 16, mem, 0); binop(t, &s, 0, 0, cf, u);
            sprintf(t, "%s r/m32, r32", m); s = S(0, k * 8 + 1, 0, 1, -1, 32, 32, mem, 0); binop(t, &s, 0, 0, cf, u);
            sprintf(t, "%s r8, r/m8", m);   s = S(0, k * 8 + 2, 0, 1, -1, 8, 8, mem, 0);   binop(t, &s, 1, 0, cf, u);
            sprintf(t, "%s r16, r/m16", m); s = S(1, k * 8 + 3, 0, 1, -1, 16, 16, mem, 0); binop(t, &s, 1, 0, cf, u);
            sprintf(t, "%s r32, r/m32", m); s = S(0, k * 8 + 3, 0, 1, -1, 32, 32, mem, 0); binop(t, &s, 1, 0, cf, u);
            sprintf(t, "%s r/m8, imm8", m);   s = S(0, 0x80, 0, 1, k, 8, 0, mem, 1);  binop(t, &s, 0, 1, cf, u);
            sprintf(t, "%s r/m16, imm16", m); s = S(1, 0x81, 0, 1, k, 16, 0, mem, 2); binop(t, &s, 0, 1, cf, u);
            sprintf(t, "%s r/m32, imm32", m); s = S(0, 0x81, 0, 1, k, 32, 0, mem, 4); binop(t, &s, 0, 1, cf, u);
            sprintf(t, "%s r/m16, imm8", m);  s = S(1, 0x83, 0, 1, k, 16, 0, mem, 1); binop(t, &s, 0, 2, cf, u);
            sprintf(t, "%s r/m32, imm8", m);  s = S(0, 0x83, 0, 1, k, 32, 0, mem, 1); binop(t, &s, 0, 2, cf, u);
        }
        sprintf(t, "%s AL, imm8", m);    accimm(t, 0, k * 8 + 4, 8, u, cf);
        sprintf(t, "%s AX, imm16", m);   accimm(t, 1, k * 8 + 5, 16, u, cf);
        sprintf(t, "%s EAX, imm32", m);  accimm(t, 0, k * 8 + 5, 32, u, cf);
    }
    /* test */
    for (int mem = 0; mem < 2; mem++) {
        Shape s;
        s = S(0, 0x84, 0, 1, -1, 8, 8, mem, 0);   binop("test r/m8, r8", &s, 0, 0, 0, F_AF);
        s = S(1, 0x85, 0, 1, -1, 16, 16, mem, 0); binop("test r/m16, r16", &s, 0, 0, 0, F_AF);
        s = S(0, 0x85, 0, 1, -1, 32, 32, mem, 0); binop("test r/m32, r32", &s, 0, 0, 0, F_AF);
        s = S(0, 0xF6, 0, 1, 0, 8, 0, mem, 1);    binop("test r/m8, imm8", &s, 0, 1, 0, F_AF);
        s = S(1, 0xF7, 0, 1, 0, 16, 0, mem, 2);   binop("test r/m16, imm16", &s, 0, 1, 0, F_AF);
        s = S(0, 0xF7, 0, 1, 0, 32, 0, mem, 4);   binop("test r/m32, imm32", &s, 0, 1, 0, F_AF);
    }
    accimm("test AL, imm8", 0, 0xA8, 8, F_AF, 0);
    accimm("test AX, imm16", 1, 0xA9, 16, F_AF, 0);
    accimm("test EAX, imm32", 0, 0xA9, 32, F_AF, 0);
    /* inc/dec/neg/not */
    for (int mem = 0; mem < 2; mem++) {
        unop("inc r/m8", 0, 0xFE, 0, 8, mem);
        unop("inc r/m16", 1, 0xFF, 0, 16, mem);
        unop("inc r/m32", 0, 0xFF, 0, 32, mem);
        unop("dec r/m8", 0, 0xFE, 1, 8, mem);
        unop("dec r/m16", 1, 0xFF, 1, 16, mem);
        unop("dec r/m32", 0, 0xFF, 1, 32, mem);
        unop("not r/m8", 0, 0xF6, 2, 8, mem);
        unop("not r/m16", 1, 0xF7, 2, 16, mem);
        unop("not r/m32", 0, 0xF7, 2, 32, mem);
        unop("neg r/m8", 0, 0xF6, 3, 8, mem);
        unop("neg r/m16", 1, 0xF7, 3, 16, mem);
        unop("neg r/m32", 0, 0xF7, 3, 32, mem);
    }
    incdec_short("inc r16 (40+rw)", 1, 0, 16);
    incdec_short("inc r32 (40+rd)", 0, 0, 32);
    incdec_short("dec r16 (48+rw)", 1, 1, 16);
    incdec_short("dec r32 (48+rd)", 0, 1, 32);
}
