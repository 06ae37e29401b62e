/* string group: movs/cmps/scas/lods/stos b/w/d with no prefix, rep, repe, repne, DF=0/1 */
#include "core.h"
#include <stdio.h>
#include <string.h>

enum { MOVS, CMPS, SCAS, LODS, STOS };
static const char *SN[5] = {"movs", "cmps", "scas", "lods", "stos"};
static const uint8_t SOP[5] = {0xA4, 0xA6, 0xAE, 0xAC, 0xAA};
static const uint32_t COUNTS[] = {0, 1, 2, 3, 4, 7, 8, 15};

static void rgn_span(V *v, uint32_t p, uint32_t n, int esz, int df)
{
    /* elements p, p+-esz, ... (n of them) plus a margin */
    uint32_t span = (n ? n : 1) * esz;
    uint32_t lo = df ? p - span + esz : p;
    region(v, (lo - 8) & ~7u, ((span + 16 + 7) & ~7u) + 8);
}

static void strf(int op, int esz, int pfx)   /* pfx: 0 none, 0xF3, 0xF2 */
{
    char name[96];
    const char *pn = pfx == 0 ? "" : pfx == 0xF2 ? "repne " : (op == CMPS || op == SCAS) ? "repe " : "rep ";
    const char sfx = esz == 1 ? 'b' : esz == 2 ? 'w' : 'd';
    snprintf(name, sizeof name, "%s%s%c", pn, SN[op], sfx);
    rseed(name);
    int n = pfx ? 64 : 24;
    uint32_t m = esz == 4 ? 0xFFFFFFFFu : (1u << (8 * esz)) - 1;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        v.resv = (1u << ESI) | (1u << EDI) | (1u << ECX) | (1u << EAX);
        int df = i & 1;
        v.fl = (v.fl & ~F_DF) | (df ? F_DF : 0);
        uint32_t cnt;
        if (!pfx) cnt = 1;
        else if (i / 2 < 8) cnt = COUNTS[i / 2];
        else cnt = 1 + rndn(i % 5 == 0 ? 40 : 10);
        uint32_t S = MEM_BASE + 0x2400 + rndn(0x40), D = MEM_BASE + 0x5400 + rndn(0x40);
        if (op == MOVS && pfx && i % 8 == 6) D = S + (rndn(2) ? 1 : -1) * (int)(1 + rndn(8));   /* overlapping */
        v.r[ESI] = S; v.r[EDI] = D;
        if (pfx) v.r[ECX] = cnt; 
        int step = df ? -esz : esz;
        uint32_t acc = rval(esz * 8);
        if (op == SCAS || op == STOS || op == LODS) setr(&v, EAX, esz * 8, acc);
        /* data for compare ops: where does the repeat stop? */
        uint32_t stop = cnt ? rndn(cnt + 1) : 0;   /* == cnt: no early stop */
        for (uint32_t k = 0; k < (cnt ? cnt : 1) + 1; k++) {
            uint32_t sa = S + k * step, da = D + k * step;
            if (op == CMPS) {
                uint32_t x = rmem(sa, esz);
                if (pfx == 0xF2) { uint32_t y = rmem(da, esz); if (k == stop) y = x; else if (y == x) y ^= 1; wmem(da, y, esz); }
                else if (pfx == 0xF3) { uint32_t y = k == stop ? (x ^ (1u << rndn(esz * 8))) & m : x; wmem(da, y, esz); }
                else if (rndn(2)) wmem(da, x, esz);
            } else if (op == SCAS) {
                if (pfx == 0xF2) { uint32_t y = rmem(da, esz); if (k == stop) y = acc; else if (y == acc) y ^= 1; wmem(da, y, esz); }
                else if (pfx == 0xF3) { uint32_t y = k == stop ? (acc ^ (1u << rndn(esz * 8))) & m : acc; wmem(da, y, esz); }
                else if (rndn(2)) wmem(da, acc, esz);
            }
        }
        if (op == MOVS || op == CMPS || op == LODS) rgn_span(&v, S, cnt + 1, esz, df);
        if (op != LODS) rgn_span(&v, D, cnt + 1, esz, df);
        v.need67 = 1;
        if (pfx) put(&v, (uint8_t)pfx);
        if (esz == 2) put(&v, 0x66);
        put(&v, (uint8_t)(SOP[op] + (esz > 1)));
        run(&v);
    }
}

void gen_string(void)
{
    for (int op = 0; op < 5; op++)
        for (int esz = 1; esz <= 4; esz *= 2) {
            strf(op, esz, 0);
            strf(op, esz, 0xF3);
            if (op == CMPS || op == SCAS) strf(op, esz, 0xF2);
        }
}
