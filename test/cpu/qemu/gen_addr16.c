/* addr16 group: 16-bit addressing (0x67 prefix in 32-bit code).
 *
 * DS, SS, ES, FS and GS are LDT data segments (modify_ldt) with different
 * bases inside the buffer and limit 0xFFFF, chosen at random per vector and
 * given in in.seg.  So a wrong default segment (SS for the BP forms, DS for
 * the others, ES for string destinations) or a wrong override shows as a
 * wrong linear address.  Offsets wrap at 64 KiB; the upper halves of the
 * address registers are random and must be ignored.  No access crosses
 * offset 0xFFFF (that would exceed the limit: #GP on a real CPU, which QEMU
 * does not check). */
#include "core.h"
#include <stdio.h>
#include <string.h>

static const uint8_t SEGPFX[6] = {0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65};

/* random 16-bit segment set-up for DS SS ES FS GS; ESP a small offset */
static void v16(V *v, const char *name)
{
    vbegin(v, name);
    static const int S5[5] = {DS, SS, ES, FS, GS};
    for (int k = 0; k < 5; k++) setseg(v, S5[k], LDT_SEL(LDT16_FIRST + rndn(LDT16_N)));
    v->r[ESP] = 0x2000 + 4 * rndn(0x3000);
    v->resv = 1u << ESP;
}

/* a random offset for an access of n bytes that does not cross 0xFFFF */
static uint32_t off16(int n)
{
    switch (rndn(5)) {
    case 0: return rndn(16);
    case 1: return 0xFFFF - n + 1 - rndn(16);
    default: return rndn(0x10000 - n + 1);
    }
}

/* ModRM with 16-bit addressing for mode m (mod = m / 8, rm = m % 8) and
 * offset off.  Registers needed for the address are reserved (before the
 * caller picks register operands).  Returns the segment register used. */
static const int RM_REGS[8][2] = {{EBX, ESI}, {EBX, EDI}, {EBP, ESI}, {EBP, EDI}, {ESI, -1}, {EDI, -1}, {EBP, -1}, {EBX, -1}};
typedef struct { int mod, rm, seg, pfx; uint32_t disp, off; } A16;

static A16 plan16(V *v, int m, uint32_t off)
{
    A16 a; memset(&a, 0, sizeof a);
    a.mod = m / 8; a.rm = m % 8; a.off = off;
    a.seg = (a.rm == 2 || a.rm == 3 || (a.rm == 6 && a.mod != 0)) ? SS : DS;
    if (rndn(4) == 0) {
        static const int O[5] = {ES, SS, DS, FS, GS};
        a.pfx = 1; a.seg = O[rndn(5)];
    }
    if (!(a.mod == 0 && a.rm == 6))
        for (int k = 0; k < 2; k++) if (RM_REGS[a.rm][k] >= 0) v->resv |= 1u << RM_REGS[a.rm][k];
    return a;
}
/* emit 67 [seg] ... must be called before the opcode; emit_modrm after it */
static void emit_prefixes(V *v, const A16 *a)
{
    if (a->pfx && rndn(2)) { put(v, SEGPFX[a->seg]); put(v, 0x67); }
    else { put(v, 0x67); if (a->pfx) put(v, SEGPFX[a->seg]); }
}
static void emit_modrm(V *v, A16 *a, int regf)
{
    put(v, (uint8_t)((a->mod << 6) | (regf << 3) | a->rm));
    uint32_t d = 0;
    if (a->mod == 0 && a->rm == 6) { d = a->off; put_imm(v, d, 2); return; }
    if (a->mod == 1) { d = sext8(rnd()); if (rndn(6) == 0) d = 0; put(v, (uint8_t)d); }
    else if (a->mod == 2) { d = rnd() & 0xFFFF; if (rndn(6) == 0) d = 0xFFFF; put_imm(v, d, 2); }
    a->disp = d;
    uint32_t want = (a->off - d) & 0xFFFF;
    int r1 = RM_REGS[a->rm][0], r2 = RM_REGS[a->rm][1];
    if (r2 < 0) v->r[r1] = (v->r[r1] & 0xFFFF0000u) | want;
    else {
        uint32_t x = rndn(4) == 0 ? rndn(16) : rnd() & 0xFFFF;
        v->r[r1] = (v->r[r1] & 0xFFFF0000u) | x;
        v->r[r2] = (v->r[r2] & 0xFFFF0000u) | ((want - x) & 0xFFFF);
    }
}
static uint32_t lin(V *v, int seg, uint32_t off) { return seg_base(v->sel[seg]) + (off & 0xFFFF); }

/* An instruction with a ModRM memory operand of n bytes.
 * kind: 0 "op m, r" / "op r, m" (regsz = register size), 1 "op m, imm" (/digit), 2 unary (/digit) */
typedef struct {
    const char *name;
    int p66;
    uint8_t op[2]; int opl;
    int digit;        /* -1: ModRM.reg is a register operand */
    int n;            /* memory operand bytes (0: lea, no access) */
    int regsz;        /* register operand size */
    int immn;         /* immediate bytes */
    uint32_t undef;
    int stack;        /* push/pop m32: the stack is used too */
    int imm_shift;    /* immediate is a shift count 1..31 */
} M16;

static void mform(const M16 *f)
{
    rseed(f->name);
    for (int i = 0; i < 72; i++) {
        V v; v16(&v, f->name);
        int m = i % 24;
        int n = f->n ? f->n : 1;
        uint32_t off = off16(n);
        A16 a = plan16(&v, m, off);
        if (f->stack && a.seg == SS && f->op[0] == 0x8F) {
            /* pop m32 through SS: keep away from the stack slot itself */
        }
        emit_prefixes(&v, &a);
        if (f->p66) put(&v, 0x66);
        for (int k = 0; k < f->opl; k++) put(&v, f->op[k]);
        int reg = -1;
        if (f->digit < 0) {
            reg = pick_op(&v, f->regsz);
            setr(&v, reg, f->regsz, rval(f->regsz));
        }
        emit_modrm(&v, &a, f->digit < 0 ? reg : f->digit);
        uint32_t imm = 0;
        if (f->immn) {
            imm = f->imm_shift ? 1 + rndn(31) : rval(f->immn * 8);
            put_imm(&v, imm, f->immn);
        }
        if (f->imm_shift) v.undef = F_AF | (imm > 1 ? F_OF : 0);
        else v.undef = f->undef;
        if (f->n) {
            uint32_t L = lin(&v, a.seg, a.off);
            wmem(L, rval(f->n * 8), f->n);
            region(&v, L - 8, f->n + 16);
        }
        if (f->stack) {
            uint32_t sb = seg_base(v.sel[SS]);
            region(&v, sb + v.r[ESP] - 16, 32);
        }
        run(&v);
    }
}

static const M16 MF[] = {
    {"mov m8, r8 (addr16)", 0, {0x88}, 1, -1, 1, 8, 0, 0, 0, 0},
    {"mov m16, r16 (addr16)", 1, {0x89}, 1, -1, 2, 16, 0, 0, 0, 0},
    {"mov m32, r32 (addr16)", 0, {0x89}, 1, -1, 4, 32, 0, 0, 0, 0},
    {"mov r8, m8 (addr16)", 0, {0x8A}, 1, -1, 1, 8, 0, 0, 0, 0},
    {"mov r16, m16 (addr16)", 1, {0x8B}, 1, -1, 2, 16, 0, 0, 0, 0},
    {"mov r32, m32 (addr16)", 0, {0x8B}, 1, -1, 4, 32, 0, 0, 0, 0},
    {"mov m8, imm8 (addr16)", 0, {0xC6}, 1, 0, 1, 0, 1, 0, 0, 0},
    {"mov m32, imm32 (addr16)", 0, {0xC7}, 1, 0, 4, 0, 4, 0, 0, 0},
    {"add m32, r32 (addr16)", 0, {0x01}, 1, -1, 4, 32, 0, 0, 0, 0},
    {"adc r16, m16 (addr16)", 1, {0x13}, 1, -1, 2, 16, 0, 0, 0, 0},
    {"sub m8, imm8 (addr16)", 0, {0x80}, 1, 5, 1, 0, 1, 0, 0, 0},
    {"xor m16, imm8 (addr16)", 1, {0x83}, 1, 6, 2, 0, 1, F_AF, 0, 0},
    {"cmp r32, m32 (addr16)", 0, {0x3B}, 1, -1, 4, 32, 0, 0, 0, 0},
    {"inc m32 (addr16)", 0, {0xFF}, 1, 0, 4, 0, 0, 0, 0, 0},
    {"neg m16 (addr16)", 1, {0xF7}, 1, 3, 2, 0, 0, 0, 0, 0},
    {"test m8, r8 (addr16)", 0, {0x84}, 1, -1, 1, 8, 0, F_AF, 0, 0},
    {"xchg m32, r32 (addr16)", 0, {0x87}, 1, -1, 4, 32, 0, 0, 0, 0},
    {"movzx r32, m8 (addr16)", 0, {0x0F, 0xB6}, 2, -1, 1, 32, 0, 0, 0, 0},
    {"movsx r32, m16 (addr16)", 0, {0x0F, 0xBF}, 2, -1, 2, 32, 0, 0, 0, 0},
    {"shl m32, imm8 (addr16)", 0, {0xC1}, 1, 4, 4, 0, 1, 0, 0, 1},
    {"imul r32, m32, imm8 (addr16)", 0, {0x6B}, 1, -1, 4, 32, 1, F_SF | F_ZF | F_AF | F_PF, 0, 0},
    {"push m32 (addr16)", 0, {0xFF}, 1, 6, 4, 0, 0, 0, 1, 0},
    {"pop m32 (addr16)", 0, {0x8F}, 1, 0, 4, 0, 0, 0, 1, 0},
    {"lea r32, m (addr16)", 0, {0x8D}, 1, -1, 0, 32, 0, 0, 0, 0},
    {"lea r16, m (addr16)", 1, {0x8D}, 1, -1, 0, 16, 0, 0, 0, 0},
};

/* jmp m32 with 16-bit addressing: the target dword is a code address */
static void jmp_m32(void)
{
    const char *name = "jmp m32 (addr16)";
    rseed(name);
    for (int i = 0; i < 48; i++) {
        V v; v16(&v, name);
        A16 a = plan16(&v, i % 24, off16(4));
        emit_prefixes(&v, &a);
        put(&v, 0xFF);
        emit_modrm(&v, &a, 4);
        int32_t t;
        do t = (int32_t)rndn(0x100000) - 0x80000; while (t >= -8 && t < 8);
        uint32_t L = lin(&v, a.seg, a.off);
        wmem(L, (uint32_t)t, 4);
        v.reld[v.nreld++] = L;
        region(&v, L - 8, 20);
        run(&v);
    }
}

/* moffs with 0x67: disp16 */
static void moffs(const char *name, int p66, uint8_t op, int n, int store)
{
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; v16(&v, name);
        uint32_t off = off16(n);
        int seg = DS, pfx = rndn(3) == 0;
        if (pfx) { static const int O[5] = {ES, SS, DS, FS, GS}; seg = O[rndn(5)]; put(&v, SEGPFX[seg]); }
        put(&v, 0x67);
        if (p66) put(&v, 0x66);
        put(&v, op); put_imm(&v, off, 2);
        uint32_t L = lin(&v, seg, off);
        wmem(L, rval(n * 8), n);
        region(&v, L - 8, n + 16);
        (void)store;
        run(&v);
    }
}

static void xlat16(void)
{
    const char *name = "xlat (addr16)";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; v16(&v, name);
        int seg = DS;
        if (rndn(3) == 0) { static const int O[5] = {ES, SS, DS, FS, GS}; seg = O[rndn(5)]; put(&v, SEGPFX[seg]); }
        put(&v, 0x67); put(&v, 0xD7);
        uint32_t off = off16(1);
        uint32_t al = rnd() & 0xFF;
        setr(&v, EAX, 8, al);
        v.r[EBX] = (v.r[EBX] & 0xFFFF0000u) | ((off - al) & 0xFFFF);
        uint32_t L = lin(&v, seg, off);
        region(&v, L - 8, 17);
        run(&v);
    }
}

/* loop/loope/loopne/jcxz with 0x67: CX is the counter, the upper half of ECX is kept */
static void loops(const char *name, uint8_t op)
{
    rseed(name);
    for (int i = 0; i < 40; i++) {
        V v; vbegin(&v, name);
        static const uint32_t C[] = {0, 1, 2, 0x10000, 0xFFFF, 0x10001, 0xFFFF0000, 0x8000};
        v.r[ECX] = i < 16 ? C[i % 8] : (rndn(2) ? (rnd() & 0xFFFF0000u) | rndn(4) : rnd());
        v.fl = (v.fl & ~F_ZF) | ((i / 8) & 1 ? F_ZF : 0);
        if (i >= 16) v.fl = rflags();
        int32_t d;
        do d = rndn(4) ? (int8_t)rnd() : (int32_t)rndn(8) - 4; while (d >= -3 && d < 0);
        put(&v, 0x67); put(&v, op); put(&v, (uint8_t)d);
        run(&v);
    }
}

/* string instructions with 0x67: DS:SI (override allowed) and ES:DI, CX count */
enum { MOVS, CMPS, SCAS, LODS, STOS };
static const char *STRN[5] = {"movs", "cmps", "scas", "lods", "stos"};
static const uint8_t SOP[5] = {0xA4, 0xA6, 0xAE, 0xAC, 0xAA};

static void rgn16(V *v, int seg, uint32_t first, uint32_t cnt, int esz, int df)
{
    /* elements first, first +- esz, ... (cnt of them), offsets mod 64K, plus margins */
    uint32_t span = (cnt ? cnt : 1) * esz;
    uint32_t lo = (df ? first - span + esz : first) - 8;
    uint32_t n = span + 16;
    uint32_t base = seg_base(v->sel[seg]);
    lo &= 0xFFFF;
    if (lo + n <= 0x10000) region(v, base + lo, n);
    else { region(v, base + lo, 0x10000 - lo); region(v, base, n - (0x10000 - lo)); }
}

static void str16(int op, int esz, int pfx)
{
    char name[96];
    const char *pn = pfx == 0 ? "" : pfx == 0xF2 ? "repne " : (op == CMPS || op == SCAS) ? "repe " : "rep ";
    const char sfx = esz == 1 ? 'b' : esz == 2 ? 'w' : 'd';
    snprintf(name, sizeof name, "%s%s%c (addr16)", pn, STRN[op], sfx);
    rseed(name);
    int n = pfx ? 48 : 24;
    uint32_t m = esz == 4 ? 0xFFFFFFFFu : (1u << (8 * esz)) - 1;
    static const uint32_t COUNTS[] = {0, 1, 2, 3, 4, 7, 8, 15};
    for (int i = 0; i < n; i++) {
        V v; v16(&v, name);
        v.resv |= (1u << ESI) | (1u << EDI) | (1u << ECX) | (1u << EAX);
        int df = i & 1;
        v.fl = (v.fl & ~F_DF) | (df ? F_DF : 0);
        uint32_t cnt = !pfx ? 1 : i / 2 < 8 ? COUNTS[i / 2] : 1 + rndn(i % 5 == 0 ? 40 : 10);
        int srcseg = DS;
        if ((op == MOVS || op == CMPS || op == LODS) && rndn(4) == 0) {
            static const int O[5] = {ES, SS, DS, FS, GS};
            srcseg = O[rndn(5)];
        }
        /* start offsets: sometimes at the 64K wrap (aligned to the element size) */
        uint32_t S, D;
        int wrap = rndn(3) == 0;
        if (wrap) {
            uint32_t k = rndn(4) * esz;
            S = df ? k : (0x10000 - esz - k);
            D = df ? (esz * rndn(3)) : (0x10000 - esz * (1 + rndn(3)));
        } else {
            S = 0x1000 + rndn(0xD000); D = 0x1000 + rndn(0xD000);
        }
        v.r[ESI] = (rnd() & 0xFFFF0000u) | S;
        v.r[EDI] = (rnd() & 0xFFFF0000u) | D;
        if (pfx) v.r[ECX] = (rnd() & 0xFFFF0000u) | cnt;
        int step = df ? -esz : esz;
        uint32_t acc = rval(esz * 8);
        if (op == SCAS || op == STOS || op == LODS) setr(&v, EAX, esz * 8, acc);
        uint32_t stop = cnt ? rndn(cnt + 1) : 0;
        uint32_t sb = seg_base(v.sel[srcseg]), db = seg_base(v.sel[ES]);
        for (uint32_t k = 0; k < (cnt ? cnt : 1) + 1; k++) {
            uint32_t sa = sb + ((S + k * step) & 0xFFFF), da = db + ((D + k * step) & 0xFFFF);
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
        if (op == MOVS || op == CMPS || op == LODS) rgn16(&v, srcseg, S, cnt + 1, esz, df);
        if (op != LODS) rgn16(&v, ES, D, cnt + 1, esz, df);
        if (srcseg != DS) put(&v, SEGPFX[srcseg]);
        put(&v, 0x67);
        if (pfx) put(&v, (uint8_t)pfx);
        if (esz == 2) put(&v, 0x66);
        put(&v, (uint8_t)(SOP[op] + (esz > 1)));
        run(&v);
    }
}

void gen_addr16(void)
{
    for (unsigned k = 0; k < sizeof MF / sizeof MF[0]; k++) mform(&MF[k]);
    jmp_m32();
    moffs("mov AL, moffs8 (addr16)", 0, 0xA0, 1, 0);
    moffs("mov AX, moffs16 (addr16)", 1, 0xA1, 2, 0);
    moffs("mov EAX, moffs32 (addr16)", 0, 0xA1, 4, 0);
    moffs("mov moffs8, AL (addr16)", 0, 0xA2, 1, 1);
    moffs("mov moffs16, AX (addr16)", 1, 0xA3, 2, 1);
    moffs("mov moffs32, EAX (addr16)", 0, 0xA3, 4, 1);
    xlat16();
    loops("loop rel8 (addr16, CX)", 0xE2);
    loops("loope rel8 (addr16, CX)", 0xE1);
    loops("loopne rel8 (addr16, CX)", 0xE0);
    loops("jcxz rel8 (addr16)", 0xE3);
    for (int op = 0; op < 5; op++)
        for (int esz = 1; esz <= 4; esz *= 2) {
            str16(op, esz, 0);
            str16(op, esz, 0xF3);
            if (op == CMPS || op == SCAS) str16(op, esz, 0xF2);
        }
}
