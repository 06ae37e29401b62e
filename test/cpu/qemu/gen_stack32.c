/* stack32 group: the 32-bit stack operations that cannot run in 64-bit mode:
 * push/pop r32, r/m32, imm; push/pop of segment registers (32- and 16-bit
 * operand size); pusha/popa (both sizes); pushfd/popfd; call rel32/r/m32;
 * ret, ret imm16; enter/leave with 32-bit operand size.  Some vectors use a
 * stack segment with a non-zero base (LDT entry 0, base mem_base) or a 16-bit
 * stack segment (B=0: SP is used and wraps at 64 KiB); their in.seg says so. */
#include "core.h"
#include <stdio.h>
#include <string.h>

/* the current vector's stack segment */
static uint32_t sbase, smask;

static uint32_t SL(uint32_t off) { return sbase + (off & smask); }

/* stack modes: 0 flat (default SS 0x2b), 1 flat or based (1 in 4), 2 16-bit SS */
static void vstack(V *v, const char *name, int mode)
{
    vbegin(v, name);
    v->resv = 1u << ESP;
    sbase = 0; smask = 0xFFFFFFFFu;
    uint32_t off = 0xC000 - 4 * rndn(64);
    if (mode == 1 && rndn(4) == 0) {
        setseg(v, SS, LDT_SEL(0));
        sbase = MEM_BASE;
        v->r[ESP] = off;
    } else if (mode == 2) {
        int e = rndn(2) ? 9 : 10;
        setseg(v, SS, LDT_SEL(e));
        sbase = LDT[e].base; smask = 0xFFFF;
        static const uint32_t SP[] = {0, 4, 8, 0xFFFC, 0xFFF8, 0x8000, 0x7FFC};
        uint32_t sp = rndn(3) ? SP[rndn(7)] : (rnd() & 0xFFFC);
        v->r[ESP] = (rnd() & 0xFFFF0000u) | sp;
    } else {
        v->r[ESP] = MEM_BASE + off;
    }
}

/* in.mem region for stack offsets [off, off + n), wrapping in a 16-bit stack */
static void srgn(V *v, uint32_t off, uint32_t n)
{
    if (smask == 0xFFFFFFFFu) { region(v, sbase + off, n); return; }
    uint32_t o = off & 0xFFFF;
    if (o + n <= 0x10000) region(v, sbase + o, n);
    else { region(v, sbase + o, 0x10000 - o); region(v, sbase, n - (0x10000 - o)); }
}
static void stackrgn(V *v) { srgn(v, v->r[ESP] - 40, 80); }
static void wstk(V *v, uint32_t off, uint32_t val, int n) { for (int i = 0; i < n; i++) wmem(SL(off + i), val >> (8 * i), 1); }

static const char *SEGN[6] = {"es", "cs", "ss", "ds", "fs", "gs"};

static void push_r32(const char *name, int mode)
{
    rseed(name);
    for (int i = 0; i < (mode == 2 ? 24 : 40); i++) {
        V v; vstack(&v, name, mode);
        int r = i < 8 ? i : (int)rndn(8);
        put(&v, (uint8_t)(0x50 + r));
        stackrgn(&v);
        run(&v);
    }
}
static void pop_r32(const char *name, int mode)
{
    rseed(name);
    for (int i = 0; i < (mode == 2 ? 24 : 40); i++) {
        V v; vstack(&v, name, mode);
        int r = i < 8 ? i : (int)rndn(8);
        put(&v, (uint8_t)(0x58 + r));
        stackrgn(&v);
        run(&v);
    }
}
static void push_imm(const char *name, int op, int immn, int mode)
{
    rseed(name);
    static const uint32_t E[] = {0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF};
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name, mode);
        uint32_t x = i < 8 ? E[i] : rval(immn * 8);
        put(&v, (uint8_t)op); put_imm(&v, x, immn);
        stackrgn(&v);
        run(&v);
    }
}

/* push r/m32 (FF /6), pop r/m32 (8F /0); memory forms sometimes address
 * relative to ESP, including pop's "address computed after ESP is incremented" */
static void pushpop_rm(int pop, int mem)
{
    char name[96];
    fmt_form(name, pop ? "pop r/m32" : "push r/m32", mem);
    rseed(name);
    int digit = pop ? 0 : 6;
    for (int i = 0; i < (mem ? 48 : 24); i++) {
        V v; vstack(&v, name, 0);
        put(&v, pop ? 0x8F : 0xFF);
        if (!mem) {
            modrm_reg(&v, digit, i < 8 ? i : (int)rndn(8));
        } else if (i % 3 == 0) {
            int32_t d = (int32_t)rndn(41) - 20;
            if (rndn(4) == 0) d = 0;
            if (d) { put(&v, (uint8_t)(0x44 | digit << 3)); put(&v, 0x24); put(&v, (uint8_t)d); }
            else { put(&v, (uint8_t)(0x04 | digit << 3)); put(&v, 0x24); }
            region(&v, v.r[ESP] + d - 16, 40);
        } else {
            v.resv = 0;
            v.used = 1u << ESP;
            uint32_t A = rand_addr();
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, digit, A);
        }
        stackrgn(&v);
        run(&v);
    }
}

/* push sreg: the selector is zero-extended or written with a 16-bit move
 * (SDM: implementation-dependent); the upper two bytes of the slot are
 * preset to zero so that both give the same memory. */
static void push_seg(int s, int p66)
{
    char name[96];
    snprintf(name, sizeof name, "push %s%s", SEGN[s], p66 ? " (16-bit, 66)" : "");
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name, 0);
        if (s != SS) setseg(&v, s, s == CS ? SEL_CODE : sel_ok(s));
        else if (rndn(3)) { setseg(&v, SS, LDT_SEL(0)); sbase = MEM_BASE; v.r[ESP] -= MEM_BASE; }
        else setseg(&v, SS, SEL_DATA);
        if (!p66) wstk(&v, v.r[ESP] - 2, 0, 2);
        if (p66) put(&v, 0x66);
        static const uint8_t OP[6] = {0x06, 0x0E, 0x16, 0x1E, 0xA0, 0xA8};
        if (s >= FS) put(&v, 0x0F);
        put(&v, OP[s]);
        stackrgn(&v);
        run(&v);
    }
}

/* pop sreg: loadable selectors, and some that fault (#GP, #NP, #SS) */
static void pop_seg(int s, int p66)
{
    char name[96];
    snprintf(name, sizeof name, "pop %s%s", SEGN[s], p66 ? " (16-bit, 66)" : "");
    rseed(name);
    int n = 40;
    for (int i = 0; i < n; i++) {
        V v; vstack(&v, name, 0);
        setseg(&v, s, sel_ok(s));
        if (s == SS && v.sel[SS] != SEL_DATA) { v.sel[SS] = SEL_DATA; }
        uint16_t sel;
        if (i % 4 == 3) {
            int vec; uint16_t err;
            sel = sel_bad(s, i / 4, &vec, &err);
            v.expect_exc = vec; v.expect_err = err; v.npvec = vec;
        } else sel = sel_ok(s);
        uint32_t img = p66 ? sel : ((rnd() & 0xFFFF0000u) | sel);
        wstk(&v, v.r[ESP], img, p66 ? 2 : 4);
        if (p66) put(&v, 0x66);
        static const uint8_t OP[6] = {0x07, 0, 0x17, 0x1F, 0xA1, 0xA9};
        if (s >= FS) put(&v, 0x0F);
        put(&v, OP[s]);
        stackrgn(&v);
        run(&v);
    }
}

static void pusha_popa(int pop, int p66, int mode)
{
    char name[96];
    snprintf(name, sizeof name, "%s%s", pop ? (p66 ? "popa" : "popad") : (p66 ? "pusha" : "pushad"),
             p66 ? " (16-bit, 66 6x)" : mode == 2 ? " (16-bit stack segment)" : "");
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name, mode);
        if (p66) put(&v, 0x66);
        put(&v, pop ? 0x61 : 0x60);
        srgn(&v, v.r[ESP] - 48, 96);
        run(&v);
    }
}

static void pushfd(void)
{
    const char *name = "pushfd";
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name, 1);
        put(&v, 0x9C);
        stackrgn(&v);
        run(&v);
    }
}
static void popfd(void)
{
    const char *name = "popfd";
    rseed(name);
    for (int i = 0; i < 48; i++) {
        V v; vstack(&v, name, 1);
        /* random image without TF (0x100); IF, IOPL, NT, AC, ID, VM, RF and
         * reserved bits vary (user mode cannot change IF, IOPL or VM) */
        uint32_t img = rnd() & ~0x100u;
        if (i == 0) img = 0; else if (i == 1) img = 0xFFFFFEFFu; else if (i == 2) img = F_ARITH | F_DF;
        else if (i < 8) img &= 0xFFFF;
        wstk(&v, v.r[ESP], img, 4);
        put(&v, 0x9D);
        stackrgn(&v);
        run(&v);
    }
}

/* call/ret: code addresses relative to the instruction start */
static int32_t rel32(int len)
{
    for (;;) {
        int32_t d = rndn(2) ? (int32_t)rndn(0x100000) - 0x80000 : (int32_t)rndn(512) - 256;
        if (d >= -len && d < 0) continue;
        return d;
    }
}
static void call_rel(int mode)
{
    const char *name = mode == 2 ? "call rel32 (16-bit stack segment)" : "call rel32";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vstack(&v, name, mode);
        put(&v, 0xE8); put_imm(&v, (uint32_t)rel32(5), 4);
        v.reld[v.nreld++] = SL(v.r[ESP] - 4);
        stackrgn(&v);
        run(&v);
    }
}
static void call_rm(int mem)
{
    const char *name = mem ? "call m32" : "call r/m32";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vstack(&v, name, 0);
        int32_t t;
        do t = rel32(0); while (t >= -4 && t < 8);
        put(&v, 0xFF);
        v.reld[v.nreld++] = SL(v.r[ESP] - 4);
        if (!mem) {
            int r; do r = rndn(8); while (r == ESP);
            modrm_reg(&v, 2, r);
            v.r[r] = (uint32_t)t;
            v.relreg = r;
        } else if (i % 4 == 0) {   /* [esp+disp8]: address computed before the push */
            int32_t d = 4 * ((int32_t)rndn(9) - 2);
            if (d) { put(&v, 0x54); put(&v, 0x24); put(&v, (uint8_t)d); } else { put(&v, 0x14); put(&v, 0x24); }
            uint32_t A = v.r[ESP] + d;
            wmem(A, (uint32_t)t, 4);
            if (A != v.r[ESP] - 4) v.reld[v.nreld++] = A;
            region(&v, A - 8, 24);
        } else {
            v.resv = 0; v.used = 1u << ESP;
            uint32_t A = rand_addr();
            wmem(A, (uint32_t)t, 4);
            v.reld[v.nreld++] = A;
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, 2, A);
        }
        stackrgn(&v);
        run(&v);
    }
}
static void ret(int imm, int mode)
{
    char name[96];
    snprintf(name, sizeof name, "%s%s", imm ? "ret imm16" : "ret", mode == 2 ? " (16-bit stack segment)" : "");
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vstack(&v, name, mode);
        int32_t t;
        do t = rel32(0); while (t >= -4 && t < 4);
        wstk(&v, v.r[ESP], (uint32_t)t, 4);
        v.reld[v.nreld++] = SL(v.r[ESP]);
        put(&v, imm ? 0xC2 : 0xC3);
        if (imm) {
            /* imm16 < 0x8000 only: qemu-i386 7.2 sign-extends imm16 (x86_ldsw_code),
             * the SDM's imm16 is an unsigned byte count */
            static const uint32_t I[] = {0, 4, 8, 0x7FFF, 0x7FFC, 2, 1};
            put_imm(&v, i < 7 ? I[i] : rndn(2) ? 4 * rndn(16) : rnd() & 0x7FFF, 2);
        }
        stackrgn(&v);
        run(&v);
    }
}

static void enter32(void)
{
    const char *name = "enter imm16, imm8";
    rseed(name);
    static const int LV[] = {0, 1, 2, 3, 4, 31, 32, 33};
    for (int i = 0; i < 80; i++) {
        V v; vstack(&v, name, 1);
        int lvl = i < 40 ? (i < 32 ? i / 8 : 31) : LV[rndn(8)];
        uint32_t alloc = rndn(3) ? rndn(64) : rnd() & 0xFFFF;
        if (i % 8 == 7) alloc = 0xFFFF;
        v.resv |= 1u << EBP;
        v.r[EBP] = v.r[ESP] + 4 * (1 + rndn(40)) - (rndn(4) == 0 ? 2 : 0);
        put(&v, 0xC8); put_imm(&v, alloc, 2); put(&v, (uint8_t)lvl);
        int l = lvl & 31;
        srgn(&v, v.r[ESP] - 4 * l - 24, 4 * l + 48);
        srgn(&v, v.r[EBP] - 4 * l - 8, 4 * l + 16);
        run(&v);
    }
}
static void leave32(int mode)
{
    const char *name = mode == 2 ? "leave (16-bit stack segment)" : "leave";
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name, mode);
        v.resv |= 1u << EBP;
        if (mode == 2) v.r[EBP] = (rnd() & 0xFFFF0000u) | ((v.r[ESP] + 4 * rndn(40)) & 0xFFFC);
        else v.r[EBP] = v.r[ESP] + 4 * rndn(40);
        put(&v, 0xC9);
        srgn(&v, v.r[EBP] - 8, 24);
        stackrgn(&v);
        run(&v);
    }
}

void gen_stack32(void)
{
    push_r32("push r32 (50+rd)", 1);
    pop_r32("pop r32 (58+rd)", 1);
    push_imm("push imm32 (68)", 0x68, 4, 1);
    push_imm("push imm8 (6A)", 0x6A, 1, 1);
    pushpop_rm(0, 0); pushpop_rm(0, 1);
    pushpop_rm(1, 0); pushpop_rm(1, 1);
    for (int p66 = 0; p66 < 2; p66++)
        for (int s = 0; s < 6; s++) push_seg(s, p66);
    for (int p66 = 0; p66 < 2; p66++)
        for (int s = 0; s < 6; s++) if (s != CS) pop_seg(s, p66);
    pusha_popa(0, 0, 1); pusha_popa(1, 0, 1);
    pusha_popa(0, 1, 1); pusha_popa(1, 1, 1);
    pushfd();
    popfd();
    call_rel(1);
    call_rm(0); call_rm(1);
    ret(0, 1); ret(1, 1);
    enter32();
    leave32(1);
    /* 16-bit stack segment (B=0): SP is used, the upper half of ESP is kept */
    push_r32("push r32 (16-bit stack segment)", 2);
    pop_r32("pop r32 (16-bit stack segment)", 2);
    push_imm("push imm32 (16-bit stack segment)", 0x68, 4, 2);
    pusha_popa(0, 0, 2); pusha_popa(1, 0, 2);
    call_rel(2);
    ret(0, 2); ret(1, 2);
    leave32(2);
}
