/* shift group: rol/ror/rcl/rcr/shl/shr/sal/sar by 1, CL, imm8; shld/shrd */
#include "core.h"
#include <stdio.h>
#include <string.h>

static const char *SH[8] = {"rol", "ror", "rcl", "rcr", "shl", "shr", "sal(/6)", "sar"};
static const uint32_t CNT[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33};
#define NCNT 11

static uint32_t shift_undef(int op, int sz, uint32_t count)
{
    uint32_t c = count & 31;
    if (!c) return 0;
    if (op <= 3) return c == 1 ? 0 : F_OF;          /* rotates: OF only for 1-bit */
    uint32_t u = F_AF | (c == 1 ? 0 : F_OF);
    if ((op == 4 || op == 5 || op == 6) && c >= (uint32_t)sz) u |= F_CF;   /* SHL/SHR count >= width */
    return u;
}

/* kind 0: by 1 (D0/D1), 1: by CL (D2/D3), 2: imm8 (C0/C1) */
static void shiftf(int op, int kind, int sz, int mem)
{
    char tmpl[96], name[96];
    const char *cn = kind == 0 ? "1" : kind == 1 ? "CL" : "imm8";
    snprintf(tmpl, sizeof tmpl, "%s r/m%d, %s", SH[op], sz, cn);
    fmt_form(name, tmpl, mem); rseed(name);
    int base = kind == 0 ? 0xD0 : kind == 1 ? 0xD2 : 0xC0;
    Shape sh = S(sz == 16, base + (sz != 8), 0, 1, op, sz, 0, mem, kind == 2 ? 1 : 0);
    int n;
    if (op == 6) n = 16;
    else if (kind == 0) n = mem ? 20 : 48;
    else n = mem ? 24 : NCNT * 4 + 20;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a = (i % 4 == 0) ? edge(sz, rndn(NEDGE)) : rval(sz);
        uint32_t c;
        if (kind == 0) c = 1;
        else if (!mem && op != 6 && i < NCNT * 4) c = CNT[i / 4];
        else if (mem && i < NCNT) c = CNT[i];
        else c = rndn(3) ? rndn(40) : rndn(256);
        if (kind == 1) { v.resv = 1u << ECX; setr(&v, ECX, 8, c); }
        shape(&v, &sh, a, 0, c, 0);
        v.undef = shift_undef(op, sz, c);
        run(&v);
    }
}

/* shld/shrd r/m, r, imm8|CL */
static void dshift(int right, int cl, int sz, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "%s r/m%d, r%d, %s", right ? "shrd" : "shld", sz, sz, cl ? "CL" : "imm8");
    fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(sz == 16, 0x0F, (right ? 0xAC : 0xA4) + cl, 2, -1, sz, sz, mem, cl ? 0 : 1);
    int n = mem ? 30 : NCNT * 4 + 30;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a = (i % 4 == 0) ? edge(sz, rndn(NEDGE)) : rval(sz);
        uint32_t b = (i % 4 == 1) ? edge(sz, rndn(NEDGE)) : rval(sz);
        uint32_t c;
        if (!mem && i < NCNT * 4) c = CNT[i / 4];
        else if (mem && i < NCNT) c = CNT[i];
        else c = rndn(3) ? rndn(40) : rndn(256);
        if (cl) { v.resv = 1u << ECX; setr(&v, ECX, 8, c); }
        ShapeOut o = shape(&v, &sh, a, b, c, 0);
        uint32_t m = c & 31;
        if (!m) v.undef = 0;
        else if (m > (uint32_t)sz) { v.undef = F_ARITH; v.undef_out = o.rm >= 0 ? 1u << o.rm : 1u << 8; }
        else v.undef = F_AF | (m == 1 ? 0 : F_OF);
        run(&v);
    }
}

void gen_shift(void)
{
    for (int op = 0; op < 8; op++)
        for (int kind = 0; kind < 3; kind++)
            for (int mem = 0; mem < 2; mem++) {
                if (op == 6 && mem) continue;
                shiftf(op, kind, 8, mem);
                shiftf(op, kind, 16, mem);
                shiftf(op, kind, 32, mem);
            }
    for (int right = 0; right < 2; right++)
        for (int cl = 0; cl < 2; cl++)
            for (int mem = 0; mem < 2; mem++) {
                dshift(right, cl, 16, mem);
                dshift(right, cl, 32, mem);
            }
}
