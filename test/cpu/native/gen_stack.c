/* stack group: 16-bit operand-size stack instructions only (66-prefixed).
 * 32-bit pushes/pops cannot be executed natively in 64-bit mode; see README. */
#include "core.h"
#include <stdio.h>
#include <string.h>

static void stackrgn(V *v)
{
    uint32_t e = v->r[ESP];
    region(v, (e - 24) & ~7u, 48);
}

static void vstack(V *v, const char *name)
{
    vbegin(v, name);
    v->resv = 1u << ESP;
    v->r[ESP] = STACK_TOP - 2 * rndn(64);   /* sometimes only 2-aligned */
}

static void push_r16(void)
{
    const char *name = "push r16 (50+rw)";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vstack(&v, name);
        int r = i < 8 ? i : (int)rndn(8);
        put(&v, 0x66); put(&v, (uint8_t)(0x50 + r));
        stackrgn(&v);
        run(&v);
    }
}
static void pop_r16(void)
{
    const char *name = "pop r16 (58+rw)";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vstack(&v, name);
        int r = i < 8 ? i : (int)rndn(8);
        put(&v, 0x66); put(&v, (uint8_t)(0x58 + r));
        stackrgn(&v);
        run(&v);
    }
}
static void push_imm(const char *name, int op, int immn)
{
    rseed(name);
    for (int i = 0; i < 16; i++) {
        V v; vstack(&v, name);
        put(&v, 0x66); put(&v, (uint8_t)op); put_imm(&v, rval(immn * 8), immn);
        stackrgn(&v);
        run(&v);
    }
}
/* push r/m16 (FF /6), pop r/m16 (8F /0).  Memory forms sometimes address
 * relative to ESP ([esp+disp8]), including POP's post-increment rule. */
static void pushpop_rm(int pop, int mem)
{
    char name[96];
    fmt_form(name, pop ? "pop r/m16" : "push r/m16", mem);
    rseed(name);
    for (int i = 0; i < (mem ? 40 : 24); i++) {
        V v; vstack(&v, name);
        put(&v, 0x66); put(&v, pop ? 0x8F : 0xFF);
        int digit = pop ? 0 : 6;
        if (!mem) {
            int r = rndn(8);
            modrm_reg(&v, digit, r);
        } else if (i % 3 == 0) {          /* [esp+disp8] / [esp] */
            int32_t d = (int32_t)rndn(33) - 16;
            v.need67 = 1;
            if (d) { put(&v, (uint8_t)(0x44 | digit << 3)); put(&v, 0x24); put(&v, (uint8_t)d); }
            else { put(&v, (uint8_t)(0x04 | digit << 3)); put(&v, 0x24); }
            region(&v, (v.r[ESP] + d - 8) & ~7u, 32);
        } else {
            uint32_t A = rand_addr();
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem(&v, digit, A);
        }
        stackrgn(&v);
        run(&v);
    }
}
static void pushf16(void)
{
    const char *name = "pushf (16-bit, 66 9C)";
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name);
        put(&v, 0x66); put(&v, 0x9C);
        stackrgn(&v);
        run(&v);
    }
}
static void popf16(void)
{
    const char *name = "popf (16-bit, 66 9D)";
    rseed(name);
    for (int i = 0; i < 40; i++) {
        V v; vstack(&v, name);
        /* random image; TF (0x100) and NT (0x4000) kept clear so that no trap or
         * task-return semantics get involved.  IF/IOPL/reserved bits vary: user
         * mode cannot change IF or IOPL (silently ignored). */
        uint32_t img = rnd() & 0xBEFF;
        if (i == 0) img = 0; else if (i == 1) img = 0xBEFF; else if (i == 2) img = F_ARITH | F_DF;
        wmem(v.r[ESP], img, 2);
        put(&v, 0x66); put(&v, 0x9D);
        stackrgn(&v);
        run(&v);
    }
}
static void enter16(void)
{
    const char *name = "enter imm16, imm8 (16-bit, 66 C8)";
    rseed(name);
    static const int LV[] = {0, 1, 2, 3, 4, 31, 32, 33};
    for (int i = 0; i < 64; i++) {
        V v; vstack(&v, name);
        int lvl = i < 32 ? i / 8 : LV[rndn(8)];
        uint32_t alloc = rndn(3) ? rndn(64) : rnd() & 0xFFFF;
        if (alloc > 0x1000) alloc &= 0xFFF;
        v.resv |= 1u << EBP;
        v.r[EBP] = v.r[ESP] + 2 * (1 + rndn(40));
        put(&v, 0x66); put(&v, 0xC8); put_imm(&v, alloc, 2); put(&v, (uint8_t)lvl);
        int l = lvl & 31;
        region(&v, (v.r[ESP] - 2 * l - 16) & ~7u, 2 * l + 32);
        region(&v, (v.r[EBP] - 2 * l - 8) & ~7u, 2 * l + 16);
        run(&v);
    }
}
static void leave16(void)
{
    const char *name = "leave (16-bit, 66 C9)";
    rseed(name);
    for (int i = 0; i < 24; i++) {
        V v; vstack(&v, name);
        v.resv |= 1u << EBP;
        v.r[EBP] = v.r[ESP] + 2 * rndn(40);
        put(&v, 0x66); put(&v, 0xC9);
        region(&v, (v.r[EBP] - 8) & ~7u, 24);
        run(&v);
    }
}

void gen_stack(void)
{
    push_r16();
    pop_r16();
    push_imm("push imm16 (66 68)", 0x68, 2);
    push_imm("push imm8 (16-bit, 66 6A)", 0x6A, 1);
    pushpop_rm(0, 0); pushpop_rm(0, 1);
    pushpop_rm(1, 0); pushpop_rm(1, 1);
    pushf16();
    popf16();
    enter16();
    leave16();
}
