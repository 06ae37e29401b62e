/* lguest.ts QEMU test-vector generator: execution core and JSON output.
 * A static i386 program run under qemu-i386 (user-mode emulation, TCG).
 * Adapted from test/cpu/native/core.c; see README.md for the format. */
#define _GNU_SOURCE
#include "core.h"
#include <asm/ldt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

extern uint32_t h_load[10];
extern uint32_t h_seg[6];
extern uint32_t h_host_esp;
extern void run_vec(void);
extern char h_resume[];

uint8_t vmem[MEM_SIZE];
static uint8_t pristine[MEM_SIZE];
static uint8_t *buf;        /* the live buffer at MEM_BASE */
static uint8_t *code;       /* code area at CODE_BASE */
static uint8_t *low;        /* linear 0..64K (code at 0) */
static uint32_t host_flags;
static uint16_t host_fs, host_gs;
static const char *outdir;
static FILE *gf;
static const char *gname;
static int unexpected;
static int gtotal;
uint32_t last_r[8], last_fl; int last_exc;   /* the last vector's result (for model checks) */
int model_mismatch;

const char *SZN[] = {"", "", "", "", "", "", "", "", "8", "", "", "", "", "", "", "", "16", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "32"};

/* ---------------- the LDT (created with modify_ldt) ----------------
 * 0: 32-bit data, base MEM_BASE, limit 0xFFFFF
 * 1..8: data with 16-bit-offset limit 0xFFFF and various bases in the buffer
 * 9, 10: 16-bit stack segments (B=0), limit 0xFFFF
 * 11: read-only data; 12: code exec/read; 13: code exec-only; 14: not present
 * 15: data, base MEM_BASE+0x10000, limit 0xFFFF */
const LdtEnt LDT[LDT_N] = {
    {MEM_BASE, 0xFFFFF, 32, 0},
    {MEM_BASE + 0x0000, 0xFFFF, 32, 0}, {MEM_BASE + 0x2468, 0xFFFF, 32, 0},
    {MEM_BASE + 0x4000, 0xFFFF, 32, 0}, {MEM_BASE + 0x5A5C, 0xFFFF, 32, 0},
    {MEM_BASE + 0x8000, 0xFFFF, 32, 0}, {MEM_BASE + 0x9ABC, 0xFFFF, 32, 0},
    {MEM_BASE + 0xC004, 0xFFFF, 32, 0}, {MEM_BASE + 0xFFF0, 0xFFFF, 32, 0},
    {MEM_BASE + 0x0000, 0xFFFF, 16, 0}, {MEM_BASE + 0x7530, 0xFFFF, 16, 0},
    {MEM_BASE, 0xFFFF, 32, 1},
    {CODE_BASE, 0xFFFFF, 32, 2},
    {CODE_BASE, 0xFFFFF, 32, 3},
    {MEM_BASE, 0xFFFF, 32, 4},
    {MEM_BASE + 0x10000, 0xFFFF, 32, 0},
};

static void make_ldt(void)
{
    for (int i = 0; i < LDT_N; i++) {
        struct user_desc d;
        memset(&d, 0, sizeof d);
        d.entry_number = i;
        d.base_addr = LDT[i].base;
        d.limit = LDT[i].limit;
        d.seg_32bit = LDT[i].size == 32;
        d.contents = LDT[i].kind == 2 || LDT[i].kind == 3 ? 2 : 0;
        d.read_exec_only = LDT[i].kind == 1 || LDT[i].kind == 3;
        d.limit_in_pages = 0;
        d.seg_not_present = LDT[i].kind == 4;
        d.useable = 0;
        if (syscall(SYS_modify_ldt, 1, &d, sizeof d) != 0) { perror("modify_ldt"); exit(1); }
    }
}

/* Descriptor information for a selector: 0 if null or not a usable segment
 * that we know (then only the selector is printed). */
static int seg_info(uint16_t sel, uint32_t *base, uint32_t *limit, int *size)
{
    if ((sel & 0xFFFC) == 0) return 0;
    if (sel & 4) {
        int i = sel >> 3;
        if (i >= LDT_N || LDT[i].kind == 4) return 0;
        *base = LDT[i].base; *limit = LDT[i].limit; *size = LDT[i].size;
        return 1;
    }
    if ((sel & 0xFFFC) == (SEL_CODE & 0xFFFC) || (sel & 0xFFFC) == (SEL_DATA & 0xFFFC)) {
        *base = 0; *limit = 0xFFFFFFFFu; *size = 32;
        return 1;
    }
    return 0;
}
uint32_t seg_base(uint16_t sel)
{
    uint32_t b = 0, l; int s;
    seg_info(sel, &b, &l, &s);
    return b;
}

/* ---------------- random (splitmix64, seeded per form) ---------------- */
static uint64_t rs;
static uint64_t r64(void)
{
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
void rseed(const char *s)
{
    uint64_t h = 1469598103934665603ull ^ 0x71656d752e6c6775ull; /* fixed global seed */
    while (*s) { h ^= (uint8_t)*s++; h *= 1099511628211ull; }
    rs = h;
}
uint32_t rnd(void) { return (uint32_t)(r64() >> 32); }
uint32_t rndn(uint32_t n) { return (uint32_t)(((uint64_t)rnd() * n) >> 32); }

/* ---------------- values ---------------- */
static const uint32_t E8[NEDGE]  = {0, 1, 2, 0x0F, 0x10, 0x7F, 0x80, 0x81, 0xFE, 0xFF};
static const uint32_t E16[NEDGE] = {0, 1, 0x0F, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x8001, 0xFFFF};
static const uint32_t E32[NEDGE] = {0, 1, 0x0F, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF, 0x10};
uint32_t msk(int sz) { return sz == 32 ? 0xFFFFFFFFu : ((1u << sz) - 1); }
uint32_t edge(int sz, int i) { return sz == 8 ? E8[i % NEDGE] : sz == 16 ? E16[i % NEDGE] : E32[i % NEDGE]; }
uint32_t rval(int sz)
{
    uint32_t x;
    switch (rndn(6)) {
    case 0: x = edge(sz, rndn(NEDGE)) + rndn(5) - 2; break;
    case 1: x = rndn(32); break;
    case 2: x = rnd() & 0x0F0F0F0F; break;
    default: x = rnd(); break;
    }
    return x & msk(sz);
}
uint32_t rflags(void) { return (rnd() & (F_ARITH | F_DF)) | 2u; }
uint32_t sext8(uint32_t x) { return (uint32_t)(int32_t)(int8_t)x; }

void fmt_form(char *out, const char *tmpl, int mem)
{
    char *o = out;
    for (const char *p = tmpl; *p; ) {
        if (mem && p[0] == 'r' && p[1] == '/' && p[2] == 'm') { *o++ = 'm'; p += 3; }
        else *o++ = *p++;
    }
    *o = 0;
}

/* ---------------- vector construction ---------------- */
void vbegin(V *v, const char *form)
{
    memset(v, 0, sizeof *v);
    snprintf(v->form, sizeof v->form, "%s", form);
    for (int i = 0; i < 8; i++) v->r[i] = rnd();
    v->r[ESP] = STACK_TOP - 4 * rndn(64);
    v->fl = rflags();
    v->relreg = -1;
    v->x = X_ADDR;
    v->expect_exc = -1;
    v->npvec = 11;
    v->expect_err = -1;
    memcpy(vmem, pristine, MEM_SIZE);
}
void put(V *v, uint8_t b) { v->c[v->cl++] = b; }
void put_imm(V *v, uint32_t x, int n) { for (int i = 0; i < n; i++) put(v, (uint8_t)(x >> (8 * i))); }
void prefix_front(V *v, uint8_t p) { memmove(v->c + 1, v->c, v->cl); v->c[0] = p; v->cl++; }

int pick_op(V *v, int sz)
{
    for (;;) {
        int r = rndn(8);
        int u = sz == 8 ? (r & 3) : r;
        if ((v->resv | (sz == 8 ? 0 : 0)) & (1u << u)) continue;
        v->used |= 1u << u;
        return r;
    }
}
int pick_free(V *v, uint32_t excl)
{
    int cand[8], n = 0;
    for (int r = 0; r < 8; r++)
        if (!(((v->used | v->resv | excl) >> r) & 1)) cand[n++] = r;
    if (!n) return -1;
    int r = cand[rndn(n)];
    v->used |= 1u << r;
    return r;
}
void setr(V *v, int reg, int sz, uint32_t val)
{
    if (sz == 8) {
        if (reg < 4) v->r[reg] = (v->r[reg] & ~0xFFu) | (val & 0xFF);
        else v->r[reg - 4] = (v->r[reg - 4] & ~0xFF00u) | ((val & 0xFF) << 8);
    } else if (sz == 16) v->r[reg] = (v->r[reg] & ~0xFFFFu) | (val & 0xFFFF);
    else v->r[reg] = val;
}
uint32_t getr(V *v, int reg, int sz)
{
    if (sz == 8) return reg < 4 ? v->r[reg] & 0xFF : (v->r[reg - 4] >> 8) & 0xFF;
    return v->r[reg] & msk(sz);
}
void modrm_reg(V *v, int regf, int rm) { put(v, (uint8_t)(0xC0 | (regf << 3) | rm)); }

void region(V *v, uint32_t a, uint32_t n)
{
    if (a < MEM_BASE) { if (a + n <= MEM_BASE) return; n -= MEM_BASE - a; a = MEM_BASE; }
    if (a >= MEM_BASE + MEM_SIZE) return;
    if (a + n > MEM_BASE + MEM_SIZE) n = MEM_BASE + MEM_SIZE - a;
    if (v->nrin < 16) { v->rin_a[v->nrin] = a; v->rin_n[v->nrin] = n; v->nrin++; }
    else { fprintf(stderr, "too many regions in '%s'\n", v->form); unexpected++; }
}
void wmem(uint32_t a, uint32_t val, int bytes)
{
    for (int i = 0; i < bytes; i++) vmem[a - MEM_BASE + i] = (uint8_t)(val >> (8 * i));
}
uint32_t rmem(uint32_t a, int bytes)
{
    uint32_t x = 0;
    for (int i = 0; i < bytes; i++) x |= (uint32_t)vmem[a - MEM_BASE + i] << (8 * i);
    return x;
}
uint32_t rand_addr(void) { return MEM_BASE + 0x1000 + rndn(0x6000); }
void setseg(V *v, int s, uint16_t sel) { v->segset |= 1 << s; v->sel[s] = sel; }

/* random 32-bit addressing form (flat DS), as in the native generator but
 * executed as is: i386 has no RIP-relative form. */
void modrm_mem32(V *v, int regf, uint32_t A)
{
    if (rndn(8) == 0) { static const uint8_t SEG[4] = {0x26, 0x2E, 0x36, 0x3E}; prefix_front(v, SEG[rndn(4)]); }
    for (int tries = 0; tries < 20; tries++) {
        int mode = rndn(10);
        int b, i, s = rndn(4);
        uint32_t d;
        switch (mode) {
        case 0:
            b = pick_free(v, (1u << ESP) | (1u << EBP));
            if (b < 0) continue;
            put(v, (uint8_t)((regf << 3) | b));
            v->r[b] = A;
            return;
        case 1: case 2:
            b = pick_free(v, 1u << ESP);
            if (b < 0) continue;
            if (mode == 1) { d = sext8(rnd()); put(v, (uint8_t)(0x40 | (regf << 3) | b)); put(v, (uint8_t)d); }
            else { d = rnd() % 2 ? rnd() : rndn(0x20000) - 0x10000; put(v, (uint8_t)(0x80 | (regf << 3) | b)); put_imm(v, d, 4); }
            v->r[b] = A - d;
            return;
        case 3:
            put(v, (uint8_t)((regf << 3) | 5));
            put_imm(v, A, 4);
            return;
        case 4: case 5: case 6: case 7: {
            int mod = mode - 4; if (mod > 2) mod = rndn(3);
            b = pick_free(v, mod == 0 ? (1u << EBP) : 0);
            if (b < 0) continue;
            i = pick_free(v, 1u << ESP);
            if (i < 0) { v->used &= ~(1u << b); continue; }
            v->r[i] = rndn(3) ? rnd() : rndn(256);
            d = mod == 0 ? 0 : mod == 1 ? sext8(rnd()) : rnd();
            put(v, (uint8_t)((mod << 6) | (regf << 3) | 4));
            put(v, (uint8_t)((s << 6) | (i << 3) | b));
            if (mod == 1) put(v, (uint8_t)d); else if (mod == 2) put_imm(v, d, 4);
            v->r[b] = A - d - (v->r[i] << s);
            return; }
        case 8:
            i = pick_free(v, 1u << ESP);
            if (i < 0) continue;
            v->r[i] = rndn(2) ? rnd() : rndn(0x1000);
            d = A - (v->r[i] << s);
            put(v, (uint8_t)((regf << 3) | 4));
            put(v, (uint8_t)((s << 6) | (i << 3) | 5));
            put_imm(v, d, 4);
            return;
        case 9:
            if ((v->used | v->resv) & (1u << ESP)) continue;
            v->used |= 1u << ESP;
            d = rndn(2) ? sext8(rnd()) : 0;
            if (d) { put(v, (uint8_t)(0x40 | (regf << 3) | 4)); put(v, (uint8_t)(0x20 | (rndn(4) << 6) | 4)); put(v, (uint8_t)d); }
            else { put(v, (uint8_t)((regf << 3) | 4)); put(v, 0x24); }
            v->r[ESP] = A - d;
            return;
        }
    }
    put(v, (uint8_t)((regf << 3) | 5));
    put_imm(v, A, 4);
}

/* ---------------- manifest bookkeeping ---------------- */
typedef struct { char name[96]; int count; uint32_t undef; } FormRec;
static FormRec forms[512]; static int nforms;

static void count_form(const char *name, uint32_t undef)
{
    int idx = -1;
    for (int i = nforms - 1; i >= 0; i--) if (!strcmp(forms[i].name, name)) { idx = i; break; }
    if (idx < 0) {
        if (nforms == 512) { fprintf(stderr, "too many forms\n"); exit(1); }
        idx = nforms++;
        memset(&forms[idx], 0, sizeof forms[idx]);
        snprintf(forms[idx].name, sizeof forms[idx].name, "%s", name);
    }
    forms[idx].count++;
    forms[idx].undef |= undef;
    gtotal++;
}

static char cpu_model[64] = "unknown", cpu_vendor[16] = "unknown", gen_date[40], qemu_version[160] = "unknown";
static uint32_t gdt_base; static uint16_t gdt_limit;

static void jhex(FILE *f, const uint8_t *p, int n) { for (int i = 0; i < n; i++) fprintf(f, "%02x", p[i]); }

/* the descriptor tables as QEMU's linux-user has them (for sreg loads) */
static void print_tables(FILE *f)
{
    fprintf(f, "\"descriptor_tables\":{\"gdt\":{\"limit\":%u,\"entries\":[", gdt_limit);
    int first = 1;
    for (uint32_t i = 0; i * 8 + 7 <= gdt_limit; i++) {
        const uint8_t *d = (const uint8_t *)(uintptr_t)(gdt_base + 8 * i);
        uint8_t z[8] = {0};
        if (!memcmp(d, z, 8)) continue;
        if (i == 6) continue;   /* the TLS entry (glibc's %gs): its base is not reproducible */
        fprintf(f, "%s[%u,\"", first ? "" : ",", i); jhex(f, d, 8); fprintf(f, "\"]"); first = 0;
    }
    uint8_t ldt[LDT_N * 8];
    memset(ldt, 0, sizeof ldt);
    long n = syscall(SYS_modify_ldt, 0, ldt, sizeof ldt);
    fprintf(f, "]},\"ldt\":{\"limit\":65535,\"entries\":[");
    for (int i = 0; i < LDT_N && i * 8 < n; i++) {
        fprintf(f, "%s[%d,\"", i ? "," : "", i); jhex(f, ldt + 8 * i, 8); fprintf(f, "\"]");
    }
    fprintf(f, "]}}");
}

static int with_tables;
void group_begin(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.jsonl", outdir, name);
    gf = fopen(path, "w");
    if (!gf) { perror(path); exit(1); }
    gname = name;
    nforms = 0; gtotal = 0;
    with_tables = !strcmp(name, "qemu-misc") || !strcmp(name, "qemu-stack32");
    fprintf(gf, "{\"format\":\"lguest.ts-cpu-vectors/1\",\"cpu\":\"%s\",\"vendor\":\"%s\",\"recorded_by\":\"%s\",\"generated\":\"%s\","
                "\"mem_base\":%u,\"mem_size\":%u,\"group\":\"%s\",\"host_eflags\":%u,\"cpl\":3,",
            cpu_model, cpu_vendor, qemu_version, gen_date, MEM_BASE, MEM_SIZE, name, host_flags);
    if (with_tables) { print_tables(gf); fputc(',', gf); }
    fprintf(gf, "\"note\":\"Recorded under %s (TCG), not on a real CPU: a second reference for what the native recording "
                "cannot cover; see test/cpu/qemu/README.md. i386 user mode (CPL 3), flat CS 0x23 and DS/ES/SS 0x2b unless "
                "a vector's in.seg says otherwise. EIP and code addresses are relative to the instruction start (mod 2^32). "
                "eflags masked to 0x%x. undef = SDM-undefined flags: QEMU's values there prove nothing.\"}\n",
            qemu_version, F_REC);
}

void group_end(void)
{
    fclose(gf); gf = NULL;
    fprintf(stderr, "%-14s %7d vectors\n", gname, gtotal);
    /* manifest fragment for this file (merged into MANIFEST.json by generate.sh) */
    char path[512];
    snprintf(path, sizeof path, "%s/%s.manifest.json", outdir, gname);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fprintf(f, "{\"file\":\"%s.jsonl.gz\",\"recorded_by\":\"%s (TCG) under user-mode emulation, not a real CPU; see test/cpu/qemu/README.md\","
               "\"generated\":\"%s\",\"mem_base\":%u,\"mem_size\":%u,\"vectors\":%d,\"forms\":[",
            gname, qemu_version, gen_date, MEM_BASE, MEM_SIZE, gtotal);
    for (int i = 0; i < nforms; i++) fprintf(f, "%s\"%s\"", i ? "," : "", forms[i].name);
    fprintf(f, "],\"counts\":{");
    for (int i = 0; i < nforms; i++) fprintf(f, "%s\"%s\":%d", i ? "," : "", forms[i].name, forms[i].count);
    fprintf(f, "},\"undefined_flags\":{");
    for (int i = 0; i < nforms; i++) fprintf(f, "%s\"%s\":%u", i ? "," : "", forms[i].name, forms[i].undef);
    fprintf(f, "}}\n");
    fclose(f);
}

static void jstr_mem(FILE *f, const uint8_t *img, uint32_t a, uint32_t n)
{
    fprintf(f, "[%u,\"", a);
    for (uint32_t i = 0; i < n; i++) fprintf(f, "%02x", img[a - MEM_BASE + i]);
    fprintf(f, "\"]");
}

/* ---------------- execution ---------------- */
static volatile uint32_t o_r[8], o_fl, o_eip, o_err;
static volatile uint16_t o_seg[6];
static volatile int o_sig;

static void handler(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    o_r[0] = g[REG_EAX]; o_r[1] = g[REG_ECX]; o_r[2] = g[REG_EDX]; o_r[3] = g[REG_EBX];
    o_r[4] = g[REG_ESP]; o_r[5] = g[REG_EBP]; o_r[6] = g[REG_ESI]; o_r[7] = g[REG_EDI];
    o_fl = g[REG_EFL]; o_eip = g[REG_EIP]; o_err = g[REG_ERR]; o_sig = sig;
    o_seg[ES] = g[REG_ES]; o_seg[CS] = g[REG_CS]; o_seg[SS] = g[REG_SS];
    o_seg[DS] = g[REG_DS]; o_seg[FS] = g[REG_FS]; o_seg[GS] = g[REG_GS];
    g[REG_EIP] = (greg_t)(uintptr_t)h_resume;
    g[REG_ESP] = (greg_t)h_host_esp;
    g[REG_UESP] = (greg_t)h_host_esp;
    g[REG_EFL] = (greg_t)host_flags;
    g[REG_SS] = SEL_DATA; g[REG_DS] = SEL_DATA; g[REG_ES] = SEL_DATA; g[REG_CS] = SEL_CODE;
    g[REG_FS] = host_fs; g[REG_GS] = host_gs;
}

static const char *RN[8] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};
static const char *SN[6] = {"es", "cs", "ss", "ds", "fs", "gs"};

static void print_seg(FILE *f, int segset, const uint16_t *sel)
{
    fprintf(f, "\"seg\":{");
    int first = 1;
    for (int s = 0; s < 6; s++) {
        if (!(segset >> s & 1)) continue;
        uint32_t b, l; int sz;
        fprintf(f, "%s\"%s\":{\"sel\":%u", first ? "" : ",", SN[s], sel[s]);
        if (seg_info(sel[s], &b, &l, &sz)) fprintf(f, ",\"base\":%u,\"limit\":%u,\"size\":%d", b, l, sz);
        fprintf(f, "}");
        first = 0;
    }
    fprintf(f, "},");
}

static uint16_t default_sel(int s)
{
    return s == CS ? SEL_CODE : s == FS ? host_fs : s == GS ? host_gs : SEL_DATA;
}

void run(V *v)
{
    uint32_t X = v->x;
    uint8_t *xp = X == 0 ? low : code + (X - CODE_BASE);
    memcpy(xp, v->c, v->cl);

    uint32_t rin[8]; memcpy(rin, v->r, sizeof rin);
    if (v->relreg >= 0) rin[v->relreg] += X;
    memcpy(buf, vmem, MEM_SIZE);
    for (int k = 0; k < v->nreld; k++) {
        uint32_t o = v->reld[k] - MEM_BASE, x;
        memcpy(&x, buf + o, 4); x += X; memcpy(buf + o, &x, 4);
    }
    for (int i = 0; i < 8; i++) h_load[i] = rin[i];
    h_load[8] = (host_flags & ~(F_ARITH | F_DF)) | (v->fl & (F_ARITH | F_DF));
    h_load[9] = X;
    uint16_t insel[6];
    for (int s = 0; s < 6; s++) {
        insel[s] = (v->segset >> s & 1) ? v->sel[s] : default_sel(s);
        h_seg[s] = insel[s];
    }
    o_sig = 0;
    run_vec();
    memset(xp, 0xCC, v->cl);

    uint32_t out[8];
    for (int i = 0; i < 8; i++) out[i] = o_r[i];
    if (v->relreg >= 0) out[v->relreg] -= X;
    for (int k = 0; k < v->nreld; k++) {
        uint32_t o = v->reld[k] - MEM_BASE, x;
        memcpy(&x, buf + o, 4); x -= X; memcpy(buf + o, &x, 4);
    }
    uint32_t eip; int exc = -1;
    if (o_sig == SIGTRAP) eip = o_eip - 1 - X;
    else {
        eip = o_eip - X;
        exc = o_sig == SIGFPE ? 0 : o_sig == SIGILL ? 6 : o_sig == SIGBUS ? v->npvec : o_sig == SIGSEGV ? 13 : 99;
        if (exc != v->expect_exc || eip != 0) {
            unexpected++;
            fprintf(stderr, "unexpected signal %d (exception %d, expected %d) at +%u in form '%s'\n", o_sig, exc, v->expect_exc, eip, v->form);
        }
    }
    if (exc >= 0 && v->expect_err >= 0 && (o_err & 0xFFFF) != (uint32_t)v->expect_err) {
        unexpected++;
        fprintf(stderr, "error code %#x, SDM says %#x, in form '%s'\n", o_err & 0xFFFF, v->expect_err, v->form);
    }
    if (o_sig == SIGTRAP && v->expect_exc >= 0) {
        unexpected++;
        fprintf(stderr, "no exception (expected %d) in form '%s'\n", v->expect_exc, v->form);
    }
    for (int s = 0; s < 6; s++) {
        if (!(v->segset >> s & 1) && o_seg[s] != insel[s]) {
            unexpected++;
            fprintf(stderr, "segment %s changed to %#x in form '%s'\n", SN[s], o_seg[s], v->form);
        }
    }

    memcpy(last_r, out, sizeof out); last_fl = o_fl & F_REC; last_exc = exc;
    count_form(v->form, v->undef);
    FILE *f = gf;
    fprintf(f, "{\"form\":\"%s\",\"code\":\"", v->form);
    jhex(f, v->c, v->cl);
    fprintf(f, "\",\"in\":{");
    for (int i = 0; i < 8; i++) fprintf(f, "\"%s\":%u,", RN[i], v->r[i]);
    fprintf(f, "\"eflags\":%u,", (v->fl & F_REC) | 2u);
    if (v->segset) print_seg(f, v->segset, insel);
    fprintf(f, "\"mem\":[");
    uint32_t ra[16], rn[16]; int nr = v->nrin;
    memcpy(ra, v->rin_a, sizeof ra); memcpy(rn, v->rin_n, sizeof rn);
    for (int i = 0; i < nr; i++) for (int j = i + 1; j < nr; j++)
        if (ra[j] < ra[i]) { uint32_t t = ra[i]; ra[i] = ra[j]; ra[j] = t; t = rn[i]; rn[i] = rn[j]; rn[j] = t; }
    int first = 1;
    for (int i = 0; i < nr; ) {
        uint32_t a = ra[i], e = ra[i] + rn[i];
        int j = i + 1;
        while (j < nr && ra[j] <= e) { if (ra[j] + rn[j] > e) e = ra[j] + rn[j]; j++; }
        if (e > a) { if (!first) fputc(',', f); jstr_mem(f, vmem, a, e - a); first = 0; }
        i = j;
    }
    fprintf(f, "]},\"out\":{");
    for (int i = 0; i < 8; i++) fprintf(f, "\"%s\":%u,", RN[i], out[i]);
    fprintf(f, "\"eflags\":%u,", (o_fl & F_REC) | 2u);
    if (v->segset) { uint16_t os[6]; for (int s = 0; s < 6; s++) os[s] = o_seg[s]; print_seg(f, v->segset, os); }
    fprintf(f, "\"mem\":[");
    first = 1;
    for (uint32_t i = 0; i < MEM_SIZE; ) {
        if (buf[i] == vmem[i]) { i++; continue; }
        uint32_t j = i;
        while (j < MEM_SIZE && buf[j] != vmem[j]) j++;
        /* every changed byte must lie in a declared in.mem region */
        for (uint32_t k = i; k < j; k++) {
            int in = 0;
            for (int q = 0; q < v->nrin; q++) if (MEM_BASE + k >= v->rin_a[q] && MEM_BASE + k < v->rin_a[q] + v->rin_n[q]) in = 1;
            if (!in) { unexpected++; fprintf(stderr, "write outside in.mem at %#x in form '%s'\n", MEM_BASE + k, v->form); break; }
        }
        if (!first) fputc(',', f);
        jstr_mem(f, buf, MEM_BASE + i, j - i);
        first = 0;
        i = j;
    }
    fprintf(f, "]},\"eip\":%u,\"exception\":", eip);
    if (exc < 0) fprintf(f, "null");
    else if (exc == 13 || exc == 11 || exc == 12) fprintf(f, "{\"vector\":%d,\"error_code\":%u}", exc, o_err & 0xFFFF);
    else fprintf(f, "{\"vector\":%d}", exc);
    if (v->undef) fprintf(f, ",\"undef\":%u", v->undef);
    if (v->undef_out) {
        fprintf(f, ",\"undef_out\":[");
        int fo = 1;
        for (int i = 0; i < 9; i++) if (v->undef_out >> i & 1) { fprintf(f, "%s\"%s\"", fo ? "" : ",", i < 8 ? RN[i] : "mem"); fo = 0; }
        fprintf(f, "]");
    }
    fprintf(f, "}\n");
}

static void read_cpuid(void)
{
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0));
    memcpy(cpu_vendor, &b, 4); memcpy(cpu_vendor + 4, &d, 4); memcpy(cpu_vendor + 8, &c, 4); cpu_vendor[12] = 0;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000000));
    if (a >= 0x80000004) {
        uint32_t w[12];
        for (int i = 0; i < 3; i++)
            __asm__ volatile("cpuid" : "=a"(w[4 * i]), "=b"(w[4 * i + 1]), "=c"(w[4 * i + 2]), "=d"(w[4 * i + 3]) : "a"(0x80000002 + i));
        memcpy(cpu_model, w, 48); cpu_model[48] = 0;
        char *p = cpu_model; while (*p == ' ') p++;
        memmove(cpu_model, p, strlen(p) + 1);
        for (p = cpu_model; *p; p++) if (*p == '"' || *p == '\\') *p = ' ';
    }
}

int main(int argc, char **argv)
{
    outdir = argc > 1 ? argv[1] : ".";
    read_cpuid();
    const char *qv = getenv("VECTORS_QEMU_VERSION");
    if (qv && *qv) {
        snprintf(qemu_version, sizeof qemu_version, "%s", qv);
        for (char *p = qemu_version; *p; p++) if (*p == '"' || *p == '\\' || *p == '\n') *p = ' ';
    }
    time_t t = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) t = (time_t)strtoll(sde, NULL, 10);
    struct tm tm; gmtime_r(&t, &tm);
    strftime(gen_date, sizeof gen_date, "%Y-%m-%dT%H:%M:%SZ", &tm);

    buf = mmap((void *)(uintptr_t)MEM_BASE, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    code = mmap((void *)(uintptr_t)CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    low = mmap((void *)0, LOW_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (buf == MAP_FAILED || code == MAP_FAILED || low == MAP_FAILED || low != (uint8_t *)0) { perror("mmap"); return 1; }
    memset(code, 0xCC, CODE_SIZE);
    memset(low, 0xCC, LOW_SIZE);
    make_ldt();
    struct { uint16_t limit; uint32_t base; } __attribute__((packed)) gdtr;
    __asm__ volatile("sgdt %0" : "=m"(gdtr));
    gdt_base = gdtr.base; gdt_limit = gdtr.limit;

    stack_t ss;
    ss.ss_size = 1 << 18;
    ss.ss_sp = mmap(NULL, ss.ss_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL)) { perror("sigaltstack"); return 1; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTRAP, SIGFPE, SIGSEGV, SIGBUS, SIGILL};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

    uint32_t fl;
    __asm__ volatile("pushfl; popl %0" : "=r"(fl));
    host_flags = fl & ~(F_ARITH | F_DF);
    __asm__ volatile("movw %%fs, %0; movw %%gs, %1" : "=m"(host_fs), "=m"(host_gs));

    rseed("pristine-memory");
    for (uint32_t i = 0; i < MEM_SIZE; i += 4) { uint32_t x = rnd(); memcpy(pristine + i, &x, 4); }

    const char *only = argc > 2 ? argv[2] : NULL;
#define G(name, fn) if (!only || strstr(only, name + 5)) { group_begin(name); fn(); group_end(); }
    G("qemu-bcd", gen_bcd);
    G("qemu-stack32", gen_stack32);
    G("qemu-addr16", gen_addr16);
    G("qemu-misc", gen_misc);
    G("qemu-p6", gen_p6);
    fprintf(stderr, "%d unexpected, %d disagreements with the SDM models\n", unexpected, model_mismatch);
    return unexpected ? 2 : 0;
}

int parity8(uint32_t x) { x &= 0xFF; x ^= x >> 4; x ^= x >> 2; x ^= x >> 1; return !(x & 1); }

/* Selectors that a CPL-3 program can load into segment register s. */
uint16_t sel_ok(int s)
{
    if (s == SS) {
        static const int IDX[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 15};
        int k = rndn(12);
        return k < 2 ? SEL_DATA : LDT_SEL(IDX[rndn(10)]);
    }
    switch (rndn(6)) {
    case 0: return (uint16_t)rndn(4);                    /* null selectors */
    case 1: return (uint16_t)(SEL_DATA - rndn(4));        /* flat data, any RPL */
    case 2: return (uint16_t)(SEL_CODE - rndn(4));        /* readable code */
    default: {
        static const int IDX[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15};
        return (uint16_t)((LDT_SEL(IDX[rndn(14)]) & ~3) | rndn(4)); }
    }
}
/* Selectors whose load faults; *vec gets the SDM's exception, *err its error code. */
uint16_t sel_bad(int s, int k, int *vec, uint16_t *err)
{
    uint16_t sel;
    *vec = 13;
    if (s == SS) {
        static const uint16_t B[] = {0, 3, 0x28, 0x2A, 0x23, LDT_SEL(11), LDT_SEL(12), LDT_SEL(14), 0x4B, LDT_SEL(0) & ~3, LDT_SEL(20)};
        sel = B[k % 11];
        if (sel == LDT_SEL(14)) *vec = 12;
        *err = (sel & 0xFFFC) == 0 ? 0 : sel & 0xFFFC;
        return sel;
    }
    static const uint16_t B[] = {0x0B, 0x4B, LDT_SEL(13), LDT_SEL(14), LDT_SEL(20), 0x1B, (uint16_t)(LDT_SEL(14) & ~3)};
    sel = B[k % 7];
    if ((sel | 3) == LDT_SEL(14)) *vec = 11;
    *err = sel & 0xFFFC;
    return sel;
}
