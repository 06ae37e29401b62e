/* branch group: jmp rel8/rel32, jcc rel8/rel32, loop/loope/loopne/jecxz, jmp r/m32 */
#include "core.h"
#include <stdio.h>
#include <string.h>

static const char *CC[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"};

static uint32_t ccflags(int i)
{
    uint32_t f = rflags();
    static const uint32_t bits[5] = {F_CF, F_ZF, F_SF, F_OF, F_PF};
    for (int b = 0; b < 5; b++) f = (f & ~bits[b]) | ((i >> b) & 1 ? bits[b] : 0);
    return f;
}

/* displacement that does not land inside the executed bytes [-(nlen), 0) relative to next */
static int32_t disp8(int nlen)
{
    for (;;) {
        int32_t d = (int8_t)rnd();
        if (rndn(4) == 0) d = (int32_t)rndn(8) - 4;
        if (d >= -nlen && d < 0) continue;
        return d;
    }
}
static int32_t disp32(int nlen)
{
    for (;;) {
        int32_t d = rndn(2) ? (int32_t)rndn(0x100000) - 0x80000 : (int32_t)rndn(512) - 256;
        if (d >= -nlen && d < 0) continue;
        return d;
    }
}

static void jmps(void)
{
    rseed("jmp rel8");
    for (int i = 0; i < 24; i++) {
        V v; vbegin(&v, "jmp rel8");
        put(&v, 0xEB); put(&v, (uint8_t)disp8(2));
        run(&v);
    }
    rseed("jmp rel32");
    for (int i = 0; i < 24; i++) {
        V v; vbegin(&v, "jmp rel32");
        put(&v, 0xE9); put_imm(&v, (uint32_t)disp32(5), 4);
        run(&v);
    }
}

static void jcc(int cc, int far)
{
    char name[64];
    snprintf(name, sizeof name, "j%s rel%d", CC[cc], far ? 32 : 8);
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vbegin(&v, name);
        v.fl = ccflags(i);
        if (far) { put(&v, 0x0F); put(&v, (uint8_t)(0x80 + cc)); put_imm(&v, (uint32_t)disp32(6), 4); }
        else { put(&v, (uint8_t)(0x70 + cc)); put(&v, (uint8_t)disp8(2)); }
        run(&v);
    }
}

/* loop/loope/loopne/jecxz with 32-bit ECX; natively prefixed with 0x67 */
static void loopf(const char *name, int op)
{
    rseed(name);
    for (int i = 0; i < 40; i++) {
        V v; vbegin(&v, name);
        static const uint32_t C[] = {0, 1, 2, 0x10000, 0xFFFFFFFF, 0x80000000};
        v.r[ECX] = i < 12 ? C[i % 6] : (rndn(2) ? rndn(4) : rnd());
        v.fl = (v.fl & ~F_ZF) | ((i / 6) & 1 ? F_ZF : 0);
        if (i >= 12) v.fl = rflags();
        v.need67 = 1;
        put(&v, (uint8_t)op); put(&v, (uint8_t)disp8(3));
        run(&v);
    }
}

static void jmp_rm(int mem)
{
    const char *name = mem ? "jmp m32" : "jmp r/m32";
    rseed(name);
    for (int i = 0; i < (mem ? 24 : 24); i++) {
        V v; vbegin(&v, name);
        int32_t t;
        do t = rndn(2) ? (int32_t)rndn(0x100000) - 0x80000 : (int32_t)rndn(512) - 256; while (t >= -4 && t < 8);
        put(&v, 0xFF);
        if (!mem) {
            int r = rndn(8);
            modrm_reg(&v, 4, r);
            v.r[r] = (uint32_t)t;
            v.relreg = r;
        } else {
            uint32_t A = rand_addr();
            wmem(A, (uint32_t)t, 4);
            wmem(A + 4, 0, 4);   /* natively a 64-bit load; upper half zero */
            region(&v, (A - 8) & ~7u, 32);
            v.relmem = A;
            modrm_mem(&v, 4, A);
        }
        run(&v);
    }
}

void gen_branch(void)
{
    jmps();
    for (int cc = 0; cc < 16; cc++) { jcc(cc, 0); jcc(cc, 1); }
    loopf("loop rel8", 0xE2);
    loopf("loope rel8", 0xE1);
    loopf("loopne rel8", 0xE0);
    loopf("jecxz rel8", 0xE3);
    jmp_rm(0);
    jmp_rm(1);
}
