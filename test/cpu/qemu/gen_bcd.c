/* BCD group: daa, das, aaa, aas, aam (any base, 0 -> #DE), aad (any base).
 * Every AL value 0..255 with every AF/CF input combination.  QEMU's defined
 * results are checked against the SDM pseudocode (models below); the flags
 * the SDM calls undefined are marked in "undef". */
#include "core.h"
#include <stdio.h>
#include <string.h>

#define U_DAA F_OF
#define U_AAA (F_OF | F_SF | F_ZF | F_PF)
#define U_AAM (F_OF | F_AF | F_CF)

static uint32_t szp(uint32_t al)
{
    al &= 0xFF;
    return (al == 0 ? F_ZF : 0) | (al & 0x80 ? F_SF : 0) | (parity8(al) ? F_PF : 0);
}

/* SDM models: return the new AX (low 16 bits) and flags (defined bits only matter) */
static void model(int op, int base, uint32_t ax, uint32_t fl, uint32_t *nax, uint32_t *nfl)
{
    uint32_t al = ax & 0xFF, ah = (ax >> 8) & 0xFF, cf = fl & F_CF, af = fl & F_AF, f = 0;
    switch (op) {
    case 0: { /* daa */
        uint32_t oal = al; f = 0;
        if ((al & 0xF) > 9 || af) { uint32_t s = al + 6; f |= (cf || s > 0xFF) ? F_CF : 0; al = s & 0xFF; f |= F_AF; }
        if (oal > 0x99 || cf) { al = (al + 0x60) & 0xFF; f |= F_CF; } else f &= ~F_CF;
        f |= szp(al); break; }
    case 1: { /* das */
        uint32_t oal = al; f = 0;
        if ((al & 0xF) > 9 || af) { f |= (cf || al < 6) ? F_CF : 0; al = (al - 6) & 0xFF; f |= F_AF; }
        if (oal > 0x99 || cf) { al = (al - 0x60) & 0xFF; f |= F_CF; }
        f |= szp(al); break; }
    case 2: /* aaa */
        if ((al & 0xF) > 9 || af) { uint32_t x = (ax + 0x106) & 0xFFFF; al = x & 0xFF; ah = x >> 8; f = F_AF | F_CF; }
        al &= 0xF; break;
    case 3: /* aas */
        if ((al & 0xF) > 9 || af) { uint32_t x = (ax - 6) & 0xFFFF; al = x & 0xFF; ah = ((x >> 8) - 1) & 0xFF; f = F_AF | F_CF; }
        al &= 0xF; break;
    case 4: /* aam */
        ah = al / base; al = al % base; f = szp(al); break;
    case 5: /* aad */
        al = (al + ah * base) & 0xFF; ah = 0; f = szp(al); break;
    }
    *nax = al | ah << 8;
    *nfl = f;
}

static const char *NAME[6] = {"daa", "das", "aaa", "aas", "aam", "aad"};
static const uint8_t OPC[6] = {0x27, 0x2F, 0x37, 0x3F, 0xD4, 0xD5};
static const uint32_t UNDEF[6] = {U_DAA, U_DAA, U_AAA, U_AAA, U_AAM, U_AAM};

static void one(const char *name, int op, int base, int withimm, uint32_t al, uint32_t fl_in, uint32_t ah)
{
    V v; vbegin(&v, name);
    v.fl = fl_in;
    setr(&v, EAX, 8, al);
    setr(&v, 4, 8, ah);   /* AH */
    put(&v, OPC[op]);
    if (withimm) put(&v, (uint8_t)base);
    if (op == 4 && base == 0) v.expect_exc = 0;
    else v.undef = UNDEF[op];
    run(&v);
    if (v.expect_exc >= 0) return;
    uint32_t nax, nfl;
    model(op, base, v.r[EAX] & 0xFFFF, v.fl, &nax, &nfl);
    uint32_t defined = F_ARITH & ~v.undef;
    if ((last_r[EAX] & 0xFFFF) != nax || (last_r[EAX] >> 16) != (v.r[EAX] >> 16) || (last_fl & defined) != (nfl & defined)) {
        if (model_mismatch++ < 20)
            fprintf(stderr, "model: %s base %d ax %04x fl %03x: qemu ax %04x fl %03x, SDM ax %04x fl %03x (defined %03x)\n", name, base,
                    v.r[EAX] & 0xFFFF, v.fl, last_r[EAX] & 0xFFFF, last_fl, nax, nfl, defined);
    }
}

void gen_bcd(void)
{
    static const uint32_t AH[] = {0x00, 0x09, 0xFF, 0x99};
    for (int op = 0; op < 6; op++) {
        const char *name = op == 4 ? "aam" : op == 5 ? "aad" : NAME[op];
        rseed(name);
        for (int i = 0; i < 1024; i++) {
            uint32_t al = i & 0xFF, combo = i >> 8;
            uint32_t fl = (rflags() & ~(F_AF | F_CF)) | (combo & 1 ? F_AF : 0) | (combo & 2 ? F_CF : 0);
            uint32_t ah = rndn(2) ? AH[rndn(4)] : rnd() & 0xFF;
            one(name, op, 10, op >= 4, al, fl, ah);
        }
    }
    /* other bases: all AL values for each base, plus random bases */
    static const int BASES[] = {1, 2, 3, 7, 8, 9, 11, 12, 15, 16, 17, 100, 127, 128, 200, 255};
    for (int op = 4; op < 6; op++) {
        const char *name = op == 4 ? "aam imm8" : "aad imm8";
        rseed(name);
        int nb = sizeof BASES / sizeof BASES[0];
        for (int k = 0; k < nb + 4; k++) {
            int base = k < nb ? BASES[k] : (int)(1 + rndn(255));
            for (int al = 0; al < 256; al++)
                one(name, op, base, 1, al, rflags(), rndn(3) ? rnd() & 0xFF : AH[rndn(4)]);
        }
        /* base 0: aam raises #DE, aad multiplies AH by 0 */
        for (int i = 0; i < (op == 4 ? 16 : 256); i++)
            one(name, op, 0, 1, op == 4 ? rnd() & 0xFF : (uint32_t)i, rflags(), rnd() & 0xFF);
    }
}
