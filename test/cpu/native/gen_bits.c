/* bits group: bt/bts/btr/btc, bsf/bsr, bswap */
#include "core.h"
#include <stdio.h>
#include <string.h>

static const char *BT[4] = {"bt", "bts", "btr", "btc"};
#define U_BT (F_OF | F_SF | F_AF | F_PF)
#define U_BS (F_CF | F_OF | F_SF | F_AF | F_PF)

/* bt r/m, r  (0F A3/AB/B3/BB) */
static void btreg(int k, int sz, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "%s r/m%d, r%d", BT[k], sz, sz);
    fmt_form(name, tmpl, mem); rseed(name);
    static const uint8_t OP[4] = {0xA3, 0xAB, 0xB3, 0xBB};
    Shape sh = S(sz == 16, 0x0F, OP[k], 2, -1, sz, sz, mem, 0);
    int n = mem ? 80 : 64;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a = rval(sz), off;
        if (!mem) off = i < sz ? (uint32_t)i : rval(sz);
        else {
            /* offsets reaching outside the addressed word, negative and large */
            static const int32_t OFF[] = {0, 1, 7, 15, 16, 31, 32, 33, 63, 64, -1, -2, -8, -16, -17, -32, -33, -64, -65,
                                          100, -100, 255, 256, 1000, -1000, 4095, -4096, 8191, -8192};
            int no = sizeof OFF / sizeof OFF[0];
            int32_t o = i < no ? OFF[i] : (int32_t)rndn(16384) - 8192;
            if (sz == 16) o = (int16_t)o;
            off = (uint32_t)o & msk(sz);
        }
        uint32_t A = 0;
        if (mem) {
            A = MEM_BASE + 0x4000 + rndn(0x100);
            int32_t so = sz == 16 ? (int16_t)off : (int32_t)off;
            uint32_t ua = A + (uint32_t)((so >> (sz == 16 ? 4 : 5)) * (sz / 8));
            /* the actually accessed unit: give it a recognisable value and show it */
            wmem(ua, rval(sz), sz / 8);
            region(&v, (ua - 8) & ~7u, 32);
        }
        shape(&v, &sh, a, off, 0, A);
        if (mem && k) maybe_lock(&v);
        v.undef = U_BT;
        run(&v);
    }
}

/* bt r/m, imm8 (0F BA /4../7) */
static void btimm(int k, int sz, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "%s r/m%d, imm8", BT[k], sz);
    fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(sz == 16, 0x0F, 0xBA, 2, 4 + k, sz, 0, mem, 1);
    int n = mem ? 40 : 64;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a = rval(sz);
        uint32_t imm = i < 40 ? (uint32_t)(i < 34 ? i : rndn(256)) : rndn(256);
        if (mem) imm = rndn(2) ? rndn(256) : rndn(sz);
        shape(&v, &sh, a, 0, imm, 0);
        if (mem && k) maybe_lock(&v);
        v.undef = U_BT;
        run(&v);
    }
}

/* bsf/bsr r, r/m */
static void bsx(int rev, int sz, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "%s r%d, r/m%d", rev ? "bsr" : "bsf", sz, sz);
    fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(sz == 16, 0x0F, rev ? 0xBD : 0xBC, 2, -1, sz, sz, mem, 0);
    int n = mem ? 30 : 70;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a;
        if (i % 8 == 0) a = 0;
        else if (i % 8 == 1) a = 1u << rndn(sz);
        else if (i % 8 == 2) a = msk(sz);
        else { a = rval(sz); if (rndn(2)) a &= rndn(2) ? (msk(sz) << rndn(sz)) : (msk(sz) >> rndn(sz)); }
        a &= msk(sz);
        ShapeOut o = shape(&v, &sh, a, rnd(), 0, 0);
        v.undef = U_BS;
        if (a == 0) v.undef_out = 1u << o.reg;   /* destination undefined (AMD: unchanged) */
        run(&v);
    }
}

static void bswap(int sz)
{
    char name[96];
    snprintf(name, sizeof name, "bswap r%d", sz);
    rseed(name);
    for (int i = 0; i < (sz == 32 ? 48 : 16); i++) {
        V v; vbegin(&v, name);
        int r = i < 8 ? i : (int)rndn(8);
        if (sz == 16) put(&v, 0x66);
        put(&v, 0x0F); put(&v, (uint8_t)(0xC8 + r));
        if (sz == 16) v.undef_out = 1u << r;   /* BSWAP with 16-bit operand: result undefined */
        run(&v);
    }
}

void gen_bits(void)
{
    for (int k = 0; k < 4; k++)
        for (int mem = 0; mem < 2; mem++) {
            btreg(k, 16, mem); btreg(k, 32, mem);
            btimm(k, 16, mem); btimm(k, 32, mem);
        }
    for (int mem = 0; mem < 2; mem++) {
        bsx(0, 16, mem); bsx(0, 32, mem);
        bsx(1, 16, mem); bsx(1, 32, mem);
    }
    bswap(32);
    bswap(16);
}
