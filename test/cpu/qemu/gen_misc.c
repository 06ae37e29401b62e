/* misc group: 82 /digit (the i386 alias of 80 /digit), control transfers
 * with a 16-bit operand size (jmp rel16 and friends; the instruction is at
 * linear address 0, so EIP truncation to 16 bits is exact and relative ==
 * absolute), mov r/m16, Sreg (8C) and mov Sreg, r/m16 (8E). */
#include "core.h"
#include <stdio.h>
#include <string.h>

static const char *ALU[8] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};

static void op82(int digit, int mem)
{
    char tmpl[96], name[96];
    snprintf(tmpl, sizeof tmpl, "%s r/m8, imm8 (82 /%d)", ALU[digit], digit);
    fmt_form(name, tmpl, mem);
    rseed(name);
    int cfboth = digit == 2 || digit == 3;
    int nedge = mem ? 0 : NEDGE * NEDGE * (cfboth ? 2 : 1);
    int n = mem ? 40 : nedge + 28;
    for (int i = 0; i < n; i++) {
        V v; vbegin(&v, name);
        uint32_t a, b;
        if (i < nedge) {
            int k = i % (NEDGE * NEDGE);
            a = edge(8, k / NEDGE); b = edge(8, k % NEDGE);
            if (cfboth) v.fl = (v.fl & ~F_CF) | (i >= NEDGE * NEDGE ? F_CF : 0);
        } else { a = rval(8); b = rval(8); }
        put(&v, 0x82);
        if (mem) {
            uint32_t A = rand_addr();
            wmem(A, a, 1);
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, digit, A);
            if (digit != 7 && rndn(6) == 0) prefix_front(&v, 0xF0);
        } else {
            int rm = pick_op(&v, 8);
            setr(&v, rm, 8, a);
            modrm_reg(&v, digit, rm);
        }
        put(&v, (uint8_t)b);
        if (digit == 1 || digit == 4 || digit == 6) v.undef = F_AF;
        run(&v);
    }
}

/* 16-bit operand-size control transfers, instruction at linear address 0.
 * Targets avoid the instruction's own bytes. */
static uint32_t tgt16(int len)
{
    for (;;) {
        uint32_t t = rndn(3) ? rnd() & 0xFFFF : (uint32_t)((len + (int)rndn(64) - 32) & 0xFFFF);
        if (t >= (uint32_t)len) return t;
    }
}
static void v16(V *v, const char *name)
{
    vbegin(v, name);
    v->x = 0;
    v->resv = 1u << ESP;
}
static void jmp_rel16(void)
{
    const char *name = "jmp rel16 (66 E9)";
    rseed(name);
    for (int i = 0; i < 48; i++) {
        V v; v16(&v, name);
        uint32_t t = tgt16(4);
        put(&v, 0x66); put(&v, 0xE9); put_imm(&v, (t - 4) & 0xFFFF, 2);
        run(&v);
    }
}
static void jcc_rel16(int cc)
{
    static const char *CC[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"};
    char name[64];
    snprintf(name, sizeof name, "j%s rel16 (66 0F %02X)", CC[cc], 0x80 + cc);
    rseed(name);
    for (int i = 0; i < 16; i++) {
        V v; v16(&v, name);
        uint32_t f = rflags();
        static const uint32_t bits[5] = {F_CF, F_ZF, F_SF, F_OF, F_PF};
        for (int b = 0; b < 5; b++) f = (f & ~bits[b]) | ((i >> b) & 1 ? bits[b] : 0);
        if (i >= 8) f = rflags();
        v.fl = f;
        uint32_t t = tgt16(5);
        put(&v, 0x66); put(&v, 0x0F); put(&v, (uint8_t)(0x80 + cc)); put_imm(&v, (t - 5) & 0xFFFF, 2);
        run(&v);
    }
}
static void call_rel16(void)
{
    const char *name = "call rel16 (66 E8)";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; v16(&v, name);
        uint32_t t = tgt16(4);
        put(&v, 0x66); put(&v, 0xE8); put_imm(&v, (t - 4) & 0xFFFF, 2);
        region(&v, v.r[ESP] - 16, 32);
        run(&v);
    }
}
static void ret16(int imm)
{
    const char *name = imm ? "ret imm16 (16-bit, 66 C2)" : "ret (16-bit, 66 C3)";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; v16(&v, name);
        uint32_t t = tgt16(imm ? 4 : 2);
        wmem(v.r[ESP], t | (rnd() & 0xFFFF0000u), 4);
        put(&v, 0x66); put(&v, imm ? 0xC2 : 0xC3);
        /* imm16 < 0x8000: qemu-i386 7.2 sign-extends it (see gen_stack32.c) */
        if (imm) put_imm(&v, i < 4 ? (uint32_t[]){0, 2, 0x7FFF, 0x7FFE}[i] : rndn(2) ? rndn(64) : rnd() & 0x7FFF, 2);
        region(&v, v.r[ESP] - 16, 32);
        run(&v);
    }
}
static void jmpcall_rm16(int call, int mem)
{
    char tmpl[64], name[64];
    snprintf(tmpl, sizeof tmpl, "%s r/m16 (66 FF /%d)", call ? "call" : "jmp", call ? 2 : 4);
    fmt_form(name, tmpl, mem);
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; v16(&v, name);
        uint32_t t = tgt16(8);
        put(&v, 0x66); put(&v, 0xFF);
        if (!mem) {
            int r = pick_op(&v, 16);
            v.r[r] = (rnd() & 0xFFFF0000u) | t;   /* the upper half is ignored */
            modrm_reg(&v, call ? 2 : 4, r);
        } else {
            uint32_t A = rand_addr();
            wmem(A, t, 2);
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, call ? 2 : 4, A);
        }
        if (call) region(&v, v.r[ESP] - 16, 32);
        run(&v);
    }
}

/* mov r/m, Sreg (8C) */
static void mov_from_seg(int p66, int mem)
{
    char name[96];
    snprintf(name, sizeof name, "%s, Sreg (%s8C)", mem ? "mov m16" : p66 ? "mov r16" : "mov r32", p66 ? "66 " : "");
    rseed(name);
    for (int i = 0; i < 48; i++) {
        V v; vbegin(&v, name);
        int s = i % 6;
        uint16_t sel = s == CS ? SEL_CODE : sel_ok(s);
        if (mem && s == DS) sel = SEL_DATA - rndn(4);     /* the operand goes through DS */
        if (mem && (s == ES || s == SS)) sel = s == SS ? SEL_DATA : SEL_DATA - rndn(4);
        setseg(&v, s, sel);
        if (p66) put(&v, 0x66);
        put(&v, 0x8C);
        if (mem) {
            uint32_t A = rand_addr();
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, s, A);
        } else modrm_reg(&v, s, rndn(8));
        run(&v);
    }
}
static void mov_seg_ud(void)
{
    const char *name = "mov r/m16, Sreg with reg=6,7 (8C, #UD)";
    rseed(name);
    for (int i = 0; i < 8; i++) {
        V v; vbegin(&v, name);
        put(&v, 0x8C); modrm_reg(&v, 6 + (i & 1), rndn(8));
        v.expect_exc = 6;
        run(&v);
    }
    name = "mov Sreg, r/m16 with reg=1,6,7 (8E, #UD)";
    rseed(name);
    for (int i = 0; i < 12; i++) {
        V v; vbegin(&v, name);
        int r = (int[]){1, 6, 7}[i % 3];
        put(&v, 0x8E); modrm_reg(&v, r, rndn(8));
        setr(&v, v.c[1] & 7, 16, i < 6 ? SEL_DATA : SEL_CODE);
        v.expect_exc = 6;
        run(&v);
    }
}

/* mov Sreg, r/m16 (8E): loadable selectors and faulting ones */
static void mov_to_seg(int p66, int mem)
{
    char name[96];
    snprintf(name, sizeof name, "mov Sreg, %s (%s8E)", mem ? "m16" : p66 ? "r16" : "r/m16", p66 ? "66 " : "");
    rseed(name);
    static const int SS5[5] = {ES, SS, DS, FS, GS};
    for (int i = 0; i < 120; i++) {
        V v; vbegin(&v, name);
        int s = SS5[i % 5];
        if (mem) setseg(&v, s, s == SS ? SEL_DATA : SEL_DATA - rndn(4));
        else setseg(&v, s, sel_ok(s));
        uint16_t sel;
        if (i % 4 == 3) {
            int vec; uint16_t err;
            sel = sel_bad(s, i / 4, &vec, &err);
            v.expect_exc = vec; v.expect_err = err; v.npvec = vec;
        } else sel = sel_ok(s);
        if (p66) put(&v, 0x66);
        put(&v, 0x8E);
        if (mem) {
            uint32_t A = rand_addr();
            wmem(A, sel, 2);
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, s, A);
            /* an ES/SS override would use the segment being replaced: fine, it is flat */
        } else {
            int r = pick_op(&v, 16);
            v.r[r] = (rnd() & 0xFFFF0000u) | sel;   /* upper half ignored */
            modrm_reg(&v, s, r);
        }
        run(&v);
    }
}

void gen_misc(void)
{
    for (int mem = 0; mem < 2; mem++)
        for (int d = 0; d < 8; d++) op82(d, mem);
    jmp_rel16();
    for (int cc = 0; cc < 16; cc++) jcc_rel16(cc);
    call_rel16();
    ret16(0); ret16(1);
    jmpcall_rm16(0, 0); jmpcall_rm16(0, 1);
    jmpcall_rm16(1, 0); jmpcall_rm16(1, 1);
    mov_from_seg(0, 0); mov_from_seg(1, 0);
    mov_from_seg(0, 1); mov_from_seg(1, 1);
    mov_to_seg(0, 0); mov_to_seg(1, 0); mov_to_seg(0, 1);
    mov_seg_ud();
}
