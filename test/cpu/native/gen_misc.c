/* misc group: cmovcc, setcc, lahf/sahf, cbw/cwde/cwd/cdq, flag ops, nops, xlat */
#include "core.h"
#include <stdio.h>
#include <string.h>

static const char *CC[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"};

/* flags chosen to exercise condition cc both ways */
static uint32_t ccflags(int i)
{
    uint32_t f = rflags();
    /* low bits of i walk over combinations of OF/SF/ZF/CF/PF */
    static const uint32_t bits[5] = {F_CF, F_ZF, F_SF, F_OF, F_PF};
    for (int b = 0; b < 5; b++) f = (f & ~bits[b]) | ((i >> b) & 1 ? bits[b] : 0);
    return f;
}

static void cmov(int cc, int sz, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "cmov%s r%d, r/m%d", CC[cc], sz, sz);
    fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(sz == 16, 0x0F, 0x40 + cc, 2, -1, sz, sz, mem, 0);
    int n = mem ? 16 : 32;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        v.fl = ccflags(mem ? (int)rndn(32) : i);
        shape(&v, &sh, rval(sz), rval(sz), 0, 0);
        run(&v);
    }
}

static void setcc(int cc, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "set%s r/m8", CC[cc]);
    fmt_form(name, tmpl, mem); rseed(name);
    int n = mem ? 16 : 32;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        v.fl = ccflags(mem ? (int)rndn(32) : i);
        Shape sh = S(0, 0x0F, 0x90 + cc, 2, (i % 4 == 3) ? (int)rndn(8) : 0, 8, 0, mem, 0);  /* ModRM.reg is ignored */
        shape(&v, &sh, rval(8), 0, 0, 0);
        run(&v);
    }
}

static void plain(const char *name, const uint8_t *bytes, int nb, int n, int acc_sz)
{
    rseed(name);
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        for (int k = 0; k < nb; k++) put(&v, bytes[k]);
        if (acc_sz) setr(&v, EAX, acc_sz, i < NEDGE ? edge(acc_sz, i) : rval(acc_sz));
        if (i < 2) v.fl = i ? (F_ARITH | F_DF | 2u) : 2u;
        run(&v);
    }
}

static void xlat(void)
{
    const char *name = "xlat m8";
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vbegin(&v, name);
        uint32_t T = rand_addr();
        uint8_t al = i < 4 ? (uint8_t)(i == 0 ? 0 : i == 1 ? 0x7F : i == 2 ? 0x80 : 0xFF) : (uint8_t)rnd();
        v.r[EBX] = T;
        setr(&v, EAX, 8, al);
        region(&v, (T + al - 8) & ~7u, 32);
        v.need67 = 1;
        put(&v, 0xD7);
        run(&v);
    }
}

void gen_misc(void)
{
    for (int cc = 0; cc < 16; cc++)
        for (int mem = 0; mem < 2; mem++) { cmov(cc, 16, mem); cmov(cc, 32, mem); }
    for (int cc = 0; cc < 16; cc++)
        for (int mem = 0; mem < 2; mem++) setcc(cc, mem);
    static const uint8_t LAHF[] = {0x9F}, SAHF[] = {0x9E}, CBW[] = {0x66, 0x98}, CWDE[] = {0x98},
                         CWD[] = {0x66, 0x99}, CDQ[] = {0x99}, CLC[] = {0xF8}, STC[] = {0xF9}, CMC[] = {0xF5},
                         CLD[] = {0xFC}, STD[] = {0xFD};
    plain("lahf", LAHF, 1, 32, 0);
    plain("sahf", SAHF, 1, 48, 0);
    plain("cbw", CBW, 2, 24, 8);
    plain("cwde", CWDE, 1, 24, 16);
    plain("cwd", CWD, 2, 24, 16);
    plain("cdq", CDQ, 1, 24, 32);
    plain("clc", CLC, 1, 12, 0);
    plain("stc", STC, 1, 12, 0);
    plain("cmc", CMC, 1, 12, 0);
    plain("cld", CLD, 1, 12, 0);
    plain("std", STD, 1, 12, 0);
    /* nops: 0x90, 66 90, and the recommended 0F 1F /0 multi-byte nops (no memory access) */
    static const uint8_t N1[] = {0x90}, N2[] = {0x66, 0x90}, N3[] = {0x0F, 0x1F, 0x00}, N4[] = {0x0F, 0x1F, 0x40, 0x00},
                         N5[] = {0x0F, 0x1F, 0x44, 0x00, 0x00}, N6[] = {0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00},
                         N7[] = {0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00},
                         N8[] = {0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
                         N9[] = {0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00},
                         NR[] = {0x0F, 0x1F, 0xC0}, NR16[] = {0x66, 0x0F, 0x1F, 0xC3};
    plain("nop", N1, 1, 4, 0);
    plain("xchg AX, AX (66 90)", N2, 2, 4, 0);
    plain("nop r/m32 (0F 1F /0, 3 bytes)", N3, 3, 4, 0);
    plain("nop r/m32 (0F 1F /0, 4 bytes)", N4, 4, 4, 0);
    plain("nop r/m32 (0F 1F /0, 5 bytes)", N5, 5, 4, 0);
    plain("nop r/m16 (66 0F 1F /0, 6 bytes)", N6, 6, 4, 0);
    plain("nop r/m32 (0F 1F /0, 7 bytes)", N7, 7, 4, 0);
    plain("nop r/m32 (0F 1F /0, 8 bytes)", N8, 8, 4, 0);
    plain("nop r/m16 (66 0F 1F /0, 9 bytes)", N9, 9, 4, 0);
    plain("nop r/m32 (0F 1F /0, register)", NR, 3, 4, 0);
    plain("nop r/m16 (66 0F 1F /0, register)", NR16, 4, 4, 0);
    xlat();
}
