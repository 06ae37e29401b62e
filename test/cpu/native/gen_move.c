/* move group: mov (all forms), movzx/movsx, xchg, cmpxchg, cmpxchg8b, xadd, lea */
#include "core.h"
#include <stdio.h>
#include <string.h>

static void simple(const char *tmpl, const Shape *sh, int n_reg, int n_mem, int dir)
{
    char name[96]; fmt_form(name, tmpl, sh->mem); rseed(name);
    int n = sh->mem ? n_mem : n_reg;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a = rval(sh->sz), b = rval(sh->rsz);
        if (i < NEDGE) a = edge(sh->sz, i);
        uint32_t imm = rval(sh->immn ? sh->immn * 8 : 8);
        if (i < NEDGE && sh->immn) imm = edge(sh->immn * 8, i);
        if (dir == 0) shape(&v, sh, a, b, imm, 0); else shape(&v, sh, b, a, imm, 0);
        if (sh->mem && !strncmp(name, "xchg", 4)) maybe_lock(&v);
        run(&v);
    }
}

static void mov_rimm(const char *name, int p66, int base, int sz)
{
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vbegin(&v, name);
        int r = i < 8 ? i : (int)rndn(8);
        if (p66) put(&v, 0x66);
        put(&v, (uint8_t)(base + r));
        put_imm(&v, i < 8 ? edge(sz, i) : rval(sz), sz / 8);
        run(&v);
    }
}

static void moffs(const char *name, int p66, int op, int sz)
{
    rseed(name);
    for (int i = 0; i < 16; i++) {
        V v; vbegin(&v, name);
        uint32_t A = rand_addr();
        wmem(A, rval(sz), sz / 8);
        region(&v, (A - 8) & ~7u, 32);
        v.need67 = 1;
        if (p66) put(&v, 0x66);
        put(&v, (uint8_t)op);
        put_imm(&v, A, 4);
        run(&v);
    }
}

static void xchg_short(const char *name, int p66, int sz)
{
    rseed(name);
    for (int i = 0; i < 21; i++) {
        V v; vbegin(&v, name);
        int r = 1 + i % 7;
        if (p66) put(&v, 0x66);
        put(&v, (uint8_t)(0x90 + r));
        (void)sz;
        run(&v);
    }
}

static void cmpxchg(const char *tmpl, int p66, int op, int sz, int mem)
{
    char name[96]; fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(p66, 0x0F, op, 2, -1, sz, sz, mem, 0);
    int n = mem ? 40 : 64;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        /* memory forms keep EAX for the accumulator; register forms may also
         * use AL/AX/EAX itself as an operand (then its value is the operand's) */
        v.resv = mem ? 1u << EAX : 0;
        uint32_t d = i < NEDGE ? edge(sz, i) : rval(sz);
        uint32_t acc = (i & 1) ? d : rval(sz);
        if (i >= NEDGE && (i & 3) == 2) acc = (d + 1) & msk(sz);
        ShapeOut o = shape(&v, &sh, d, rval(sz), 0, 0);
        if (mem) maybe_lock(&v);
        if (o.rm != 0 && o.reg != 0) setr(&v, EAX, sz, acc);
        run(&v);
    }
}

static void cmpxchg8b(void)
{
    const char *name = "cmpxchg8b m64";
    rseed(name);
    for (int i = 0; i < 48; i++) {
        V v; vbegin(&v, name);
        v.resv = (1u << EAX) | (1u << EDX) | (1u << EBX) | (1u << ECX);
        uint32_t lo = rval(32), hi = rval(32);
        uint32_t A = rand_addr();
        wmem(A, lo, 4); wmem(A + 4, hi, 4);
        region(&v, (A - 8) & ~7u, 32);
        switch (i % 4) {
        case 0: case 1: v.r[EAX] = lo; v.r[EDX] = hi; break;              /* equal */
        case 2: v.r[EAX] = lo; v.r[EDX] = hi ^ (1u << rndn(32)); break;    /* high differs */
        default: v.r[EAX] = lo ^ (1u << rndn(32)); v.r[EDX] = hi; break;   /* low differs */
        }
        put(&v, 0x0F); put(&v, 0xC7);
        modrm_mem(&v, 1, A);
        maybe_lock(&v);
        run(&v);
    }
}

static void xadd(const char *tmpl, int p66, int op, int sz, int mem)
{
    char name[96]; fmt_form(name, tmpl, mem); rseed(name);
    Shape sh = S(p66, 0x0F, op, 2, -1, sz, sz, mem, 0);
    int ne = mem ? 0 : NEDGE * NEDGE;
    int n = mem ? 40 : ne + 28;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < ne) { a = edge(sz, i / NEDGE); b = edge(sz, i % NEDGE); }
        else { a = rval(sz); b = rval(sz); }
        shape(&v, &sh, a, b, 0, 0);
        if (mem) maybe_lock(&v);
        run(&v);
    }
}

/* lea: exhaustive over mod (0..2), rm and every SIB byte, 32-bit operand size;
 * plus random forms with 16-bit operand size. */
static void lea_one(V *v, int p66, int mod, int rm, int sib)
{
    int reg = rndn(8);
    if (p66) put(v, 0x66);
    put(v, 0x8D);
    v->need67 = 1;
    if (mod == 0 && rm == 5) {   /* [disp32] -> SIB form natively */
        put_c(v, (uint8_t)((reg << 3) | 5));
        put_n(v, (uint8_t)((reg << 3) | 4)); put_n(v, 0x25);
        v->ndiff = 1;
    } else {
        put(v, (uint8_t)((mod << 6) | (reg << 3) | rm));
        if (rm == 4) put(v, (uint8_t)sib);
    }
    int disp32 = (mod == 2) || (mod == 0 && rm == 5) || (mod == 0 && rm == 4 && (sib & 7) == 5);
    if (mod == 1) put(v, (uint8_t)rnd());
    else if (disp32) put_imm(v, rndn(2) ? rnd() : rndn(0x100000), 4);
    /* some registers small, some large, to get both wrap and no-wrap */
    for (int r = 0; r < 8; r++) if (rndn(3) == 0) v->r[r] = rndn(0x10000);
}

static void lea(void)
{
    rseed("lea r32, m");
    for (int mod = 0; mod < 3; mod++)
        for (int rm = 0; rm < 8; rm++)
            for (int sib = 0; sib < (rm == 4 ? 256 : 1); sib++) {
                V v; vbegin(&v, "lea r32, m");
                lea_one(&v, 0, mod, rm, sib);
                run(&v);
            }
    rseed("lea r16, m");
    for (int i = 0; i < 200; i++) {
        V v; vbegin(&v, "lea r16, m");
        int mod = rndn(3), rm = rndn(8);
        lea_one(&v, 1, mod, rm, rndn(256));
        run(&v);
    }
}

void gen_move(void)
{
    for (int mem = 0; mem < 2; mem++) {
        Shape s;
        s = S(0, 0x88, 0, 1, -1, 8, 8, mem, 0);   simple("mov r/m8, r8", &s, 24, 24, 0);
        s = S(1, 0x89, 0, 1, -1, 16, 16, mem, 0); simple("mov r/m16, r16", &s, 24, 24, 0);
        s = S(0, 0x89, 0, 1, -1, 32, 32, mem, 0); simple("mov r/m32, r32", &s, 24, 24, 0);
        s = S(0, 0x8A, 0, 1, -1, 8, 8, mem, 0);   simple("mov r8, r/m8", &s, 24, 24, 1);
        s = S(1, 0x8B, 0, 1, -1, 16, 16, mem, 0); simple("mov r16, r/m16", &s, 24, 24, 1);
        s = S(0, 0x8B, 0, 1, -1, 32, 32, mem, 0); simple("mov r32, r/m32", &s, 24, 24, 1);
        s = S(0, 0xC6, 0, 1, 0, 8, 0, mem, 1);    simple("mov r/m8, imm8", &s, 24, 24, 0);
        s = S(1, 0xC7, 0, 1, 0, 16, 0, mem, 2);   simple("mov r/m16, imm16", &s, 24, 24, 0);
        s = S(0, 0xC7, 0, 1, 0, 32, 0, mem, 4);   simple("mov r/m32, imm32", &s, 24, 24, 0);
        s = S(1, 0x0F, 0xB6, 2, -1, 8, 16, mem, 0);  simple("movzx r16, r/m8", &s, 32, 24, 0);
        s = S(0, 0x0F, 0xB6, 2, -1, 8, 32, mem, 0);  simple("movzx r32, r/m8", &s, 32, 24, 0);
        s = S(0, 0x0F, 0xB7, 2, -1, 16, 32, mem, 0); simple("movzx r32, r/m16", &s, 32, 24, 0);
        s = S(1, 0x0F, 0xBE, 2, -1, 8, 16, mem, 0);  simple("movsx r16, r/m8", &s, 32, 24, 0);
        s = S(0, 0x0F, 0xBE, 2, -1, 8, 32, mem, 0);  simple("movsx r32, r/m8", &s, 32, 24, 0);
        s = S(0, 0x0F, 0xBF, 2, -1, 16, 32, mem, 0); simple("movsx r32, r/m16", &s, 32, 24, 0);
        s = S(0, 0x86, 0, 1, -1, 8, 8, mem, 0);   simple("xchg r/m8, r8", &s, 24, 24, 0);
        s = S(1, 0x87, 0, 1, -1, 16, 16, mem, 0); simple("xchg r/m16, r16", &s, 24, 24, 0);
        s = S(0, 0x87, 0, 1, -1, 32, 32, mem, 0); simple("xchg r/m32, r32", &s, 24, 24, 0);
        cmpxchg("cmpxchg r/m8, r8", 0, 0xB0, 8, mem);
        cmpxchg("cmpxchg r/m16, r16", 1, 0xB1, 16, mem);
        cmpxchg("cmpxchg r/m32, r32", 0, 0xB1, 32, mem);
        xadd("xadd r/m8, r8", 0, 0xC0, 8, mem);
        xadd("xadd r/m16, r16", 1, 0xC1, 16, mem);
        xadd("xadd r/m32, r32", 0, 0xC1, 32, mem);
    }
    mov_rimm("mov r8, imm8 (B0+rb)", 0, 0xB0, 8);
    mov_rimm("mov r16, imm16 (B8+rw)", 1, 0xB8, 16);
    mov_rimm("mov r32, imm32 (B8+rd)", 0, 0xB8, 32);
    moffs("mov AL, moffs8", 0, 0xA0, 8);
    moffs("mov AX, moffs16", 1, 0xA1, 16);
    moffs("mov EAX, moffs32", 0, 0xA1, 32);
    moffs("mov moffs8, AL", 0, 0xA2, 8);
    moffs("mov moffs16, AX", 1, 0xA3, 16);
    moffs("mov moffs32, EAX", 0, 0xA3, 32);
    xchg_short("xchg AX, r16 (90+rw)", 1, 16);
    xchg_short("xchg EAX, r32 (90+rd)", 0, 32);
    cmpxchg8b();
    lea();
}
