/* muldiv group: mul/imul (1, 2, 3 operands), div/idiv incl. #DE */
#include "core.h"
#include <string.h>

#define U_MUL (F_SF | F_ZF | F_AF | F_PF)

static uint32_t sx(uint32_t x, int sz) { return sz == 32 ? x : (uint32_t)(((int32_t)(x << (32 - sz))) >> (32 - sz)); }

static void mul1(const char *tmpl, int p66, int op, int digit, int sz, int mem)
{
    char name[96]; fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(p66, op, 0, 1, digit, sz, 0, mem, 0);
    int ne = mem ? 0 : NEDGE * NEDGE;
    int n = mem ? 40 : ne + 40;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < ne) { a = edge(sz, i / NEDGE); b = edge(sz, i % NEDGE); }
        else { a = rval(sz); b = rval(sz); }
        if (mem) v.resv = (1u << EAX) | (sz > 8 ? 1u << EDX : 0);
        ShapeOut o = shape(&v, &sh, b, 0, 0, 0);
        if (!(sz == 8 ? o.rm == 0 : o.rm == EAX)) setr(&v, EAX, sz, a);
        v.undef = U_MUL;
        run(&v);
    }
}

static void imul2(const char *tmpl, int p66, int sz, int mem)
{
    char name[96]; fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(p66, 0x0F, 0xAF, 2, -1, sz, sz, mem, 0);
    int ne = mem ? 0 : NEDGE * NEDGE;
    int n = mem ? 40 : ne + 40;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < ne) { a = edge(sz, i / NEDGE); b = edge(sz, i % NEDGE); }
        else { a = rval(sz); b = rval(sz); }
        shape(&v, &sh, b, a, 0, 0);
        v.undef = U_MUL;
        run(&v);
    }
}

static void imul3(const char *tmpl, int p66, int op, int sz, int immn, int mem)
{
    char name[96]; fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(p66, op, 0, 1, -1, sz, sz, mem, immn);
    int ne = mem ? 0 : NEDGE * NEDGE;
    int n = mem ? 40 : ne + 40;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < ne) { a = edge(sz, i / NEDGE); b = edge(immn == 1 ? 8 : sz, i % NEDGE); }
        else { a = rval(sz); b = rval(immn == 1 ? 8 : sz); }
        shape(&v, &sh, a, rnd(), b, 0);
        v.undef = U_MUL;
        run(&v);
    }
}

/* div / idiv.  Dividend is AX (8-bit), DX:AX (16), EDX:EAX (32). */
static void divf(const char *tmpl, int p66, int op, int digit, int sz, int mem)
{
    char name[96]; fmt_form(name, tmpl, mem); rseed(name);
    int sgn = digit == 7;
    Shape sh = S(p66, op, 0, 1, digit, sz, 0, mem, 0);
    int n = mem ? 48 : 120;
    uint64_t M = sz == 32 ? 0xFFFFFFFFull : (1ull << sz) - 1;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        v.resv = (1u << EAX) | (sz > 8 ? 1u << EDX : 0);
        uint64_t dvd; uint32_t d;
        int kind = i % 10;
        int64_t smin = -(1ll << (sz - 1)), smax = (1ll << (sz - 1)) - 1;
        d = rval(sz);
        if (kind == 0) {                 /* divide by zero */
            d = 0; dvd = ((uint64_t)rnd() << 32 | rnd());
            if (i % 20 == 0) dvd = 0;
        } else if (kind == 1) {          /* quotient overflow */
            if (!d) d = 1;
            if (!sgn) {
                uint64_t hi = d + (uint64_t)rndn((uint32_t)(M - d + 1 > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)(M - d + 1)));
                if (hi > M) hi = M;
                dvd = hi << sz | (rnd() & M);
            } else {
                int64_t sd = (int32_t)sx(d, sz);
                if (i % 20 == 1) sd = -1;
                int64_t q = rndn(2) ? smax + 1 + rndn(4) : smin - 1 - rndn(4);
                if (sd == -1) q = -smin;  /* MIN / -1 */
                d = (uint32_t)sd & (uint32_t)M;
                dvd = (uint64_t)(q * sd);
                if (sd == -1) dvd = (uint64_t)smin;
            }
        } else if (kind == 2) {          /* boundary quotients */
            if (!sgn) {
                if (!d) d = 1;
                uint64_t q = M, r = rndn(2) ? 0 : d - 1;
                dvd = q * d + r;
            } else {
                int64_t sd = (int32_t)sx(d, sz); if (!sd) sd = 1;
                if (i % 20 == 2) sd = -1;
                int64_t q = rndn(2) ? smax : smin;
                d = (uint32_t)sd & (uint32_t)M;
                dvd = (uint64_t)(q * sd);
            }
        } else {                         /* normal division */
            if (!d) d = 1 + rndn(7);
            if (!sgn) {
                uint64_t q = rval(sz) & M, r = ((uint64_t)rnd() << 32 | rnd()) % d;
                if (kind == 3) q = 0;
                dvd = q * d + r;
            } else {
                int64_t sd = (int32_t)sx(d, sz);
                int64_t q = (int32_t)sx(rval(sz), sz);
                uint64_t ad = sd < 0 ? (uint64_t)-sd : (uint64_t)sd;
                int64_t r = (int64_t)(((uint64_t)rnd() << 32 | rnd()) % ad);
                if (kind == 3) r = 0;
                int64_t p = q * sd;
                if (p < 0 || (p == 0 && rndn(2))) r = -r;
                dvd = (uint64_t)(p + r);
            }
        }
        ShapeOut o = shape(&v, &sh, d, 0, 0, 0);
        (void)o;
        if (sz == 8) setr(&v, EAX, 16, (uint32_t)dvd);
        else { setr(&v, EAX, sz, (uint32_t)(dvd & M)); setr(&v, EDX, sz, (uint32_t)((dvd >> sz) & M)); }
        v.undef = F_ARITH;
        run(&v);
    }
}

void gen_muldiv(void)
{
    for (int mem = 0; mem < 2; mem++) {
        mul1("mul r/m8", 0, 0xF6, 4, 8, mem);
        mul1("mul r/m16", 1, 0xF7, 4, 16, mem);
        mul1("mul r/m32", 0, 0xF7, 4, 32, mem);
        mul1("imul r/m8", 0, 0xF6, 5, 8, mem);
        mul1("imul r/m16", 1, 0xF7, 5, 16, mem);
        mul1("imul r/m32", 0, 0xF7, 5, 32, mem);
        imul2("imul r16, r/m16", 1, 16, mem);
        imul2("imul r32, r/m32", 0, 32, mem);
        imul3("imul r16, r/m16, imm8", 1, 0x6B, 16, 1, mem);
        imul3("imul r32, r/m32, imm8", 0, 0x6B, 32, 1, mem);
        imul3("imul r16, r/m16, imm16", 1, 0x69, 16, 2, mem);
        imul3("imul r32, r/m32, imm32", 0, 0x69, 32, 4, mem);
        divf("div r/m8", 0, 0xF6, 6, 8, mem);
        divf("div r/m16", 1, 0xF7, 6, 16, mem);
        divf("div r/m32", 0, 0xF7, 6, 32, mem);
        divf("idiv r/m8", 0, 0xF6, 7, 8, mem);
        divf("idiv r/m16", 1, 0xF7, 7, 16, mem);
        divf("idiv r/m32", 0, 0xF7, 7, 32, mem);
    }
}
