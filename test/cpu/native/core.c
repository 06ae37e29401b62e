/* lguest.ts native test-vector generator: execution core and JSON output.
 * Written from scratch for lguest.ts.  See README.md for the format. */
#define _GNU_SOURCE
#include "core.h"
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

extern uint64_t h_load[10];
extern uint64_t h_host_rsp;
extern void run_vec(void);
extern char h_resume[];

uint8_t vmem[MEM_SIZE];
static uint8_t pristine[MEM_SIZE];
static uint8_t *buf;        /* the live buffer at MEM_BASE */
static uint8_t *code;       /* code area at CODE_BASE */
static uint64_t host_flags; /* RFLAGS of the process (IF=1 ...) */
static const char *outdir;
static FILE *gf;            /* current group file */
static const char *gname;
static int unexpected;

const char *SZN[] = {"", "", "", "", "", "", "", "", "8", "", "", "", "", "", "", "", "16"};

/* ---------------- random (splitmix64, seeded per form family) ---------------- */
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
    uint64_t h = 1469598103934665603ull ^ 0x6c67756573742e74ull; /* fixed global seed */
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
uint32_t edge(int sz, int i)
{
    return sz == 8 ? E8[i % NEDGE] : sz == 16 ? E16[i % NEDGE] : E32[i % NEDGE];
}
uint32_t rval(int sz)
{
    uint32_t x;
    switch (rndn(6)) {
    case 0: x = edge(sz, rndn(NEDGE)) + rndn(5) - 2; break;
    case 1: x = rndn(32); break;
    case 2: x = rnd() & 0x0F0F0F0F; break;   /* low nibbles: AF/half-carry cases */
    default: x = rnd(); break;
    }
    return x & msk(sz);
}
uint32_t rflags(void) { return (rnd() & (F_ARITH | F_DF)) | 2u; }

void fmt_form(char *out, const char *tmpl, int mem)
{
    /* memory variant: "r/m" -> "m" */
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
    memcpy(vmem, pristine, MEM_SIZE);
}
void put_c(V *v, uint8_t b) { v->c[v->cl++] = b; }
void put_n(V *v, uint8_t b) { v->n[v->nl++] = b; }
void put(V *v, uint8_t b) { put_c(v, b); put_n(v, b); }
void put_imm(V *v, uint32_t x, int n) { for (int i = 0; i < n; i++) put(v, (uint8_t)(x >> (8 * i))); }

int pick_op(V *v, int sz)
{
    for (;;) {
        int r = rndn(8);
        int u = sz == 8 ? (r & 3) : r;
        if (v->resv & (1u << u)) continue;
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
    if (a < MEM_BASE) { n -= MEM_BASE - a; a = MEM_BASE; }
    if (a + n > MEM_BASE + MEM_SIZE) n = MEM_BASE + MEM_SIZE - a;
    if (v->nrin < 12) { v->rin_a[v->nrin] = a; v->rin_n[v->nrin] = n; v->nrin++; }
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

/* Memory operand with a random 32-bit addressing form whose effective
 * address is A.  Natively the instruction is executed with a 0x67 prefix
 * (32-bit addressing in 64-bit mode); [disp32] (mod=00 rm=101) is executed
 * as the equivalent SIB form because it is RIP-relative in 64-bit mode. */
static void prefix_front(V *v, uint8_t p)
{
    memmove(v->c + 1, v->c, v->cl); v->c[0] = p; v->cl++;
    memmove(v->n + 1, v->n, v->nl); v->n[0] = p; v->nl++;
}
/* LOCK prefix (only call for memory-destination read-modify-write forms) */
void maybe_lock(V *v)
{
    if (rndn(6) == 0) prefix_front(v, 0xF0);
}
void modrm_mem(V *v, int regf, uint32_t A)
{
    v->need67 = 1;
    /* occasionally an explicit ES/CS/SS/DS override: all flat (base 0) in both modes */
    if (rndn(8) == 0) { static const uint8_t SEG[4] = {0x26, 0x2E, 0x36, 0x3E}; prefix_front(v, SEG[rndn(4)]); }
    for (int tries = 0; tries < 20; tries++) {
        int mode = rndn(10);
        int b, i, s = rndn(4);
        uint32_t d;
        switch (mode) {
        case 0: /* [b] */
            b = pick_free(v, (1u << ESP) | (1u << EBP));
            if (b < 0) continue;
            put(v, (uint8_t)((regf << 3) | b));
            v->r[b] = A;
            return;
        case 1: case 2: /* [b+disp8] / [b+disp32] */
            b = pick_free(v, 1u << ESP);
            if (b < 0) continue;
            if (mode == 1) {
                d = (uint32_t)(int32_t)(int8_t)rnd();
                put(v, (uint8_t)(0x40 | (regf << 3) | b)); put(v, (uint8_t)d);
            } else {
                d = rnd() % 2 ? rnd() : rndn(0x20000) - 0x10000;
                put(v, (uint8_t)(0x80 | (regf << 3) | b)); put_imm(v, d, 4);
            }
            v->r[b] = A - d;
            return;
        case 3: /* [disp32] */
            put_c(v, (uint8_t)((regf << 3) | 5));
            put_n(v, (uint8_t)((regf << 3) | 4)); put_n(v, 0x25);
            put_imm(v, A, 4);
            v->ndiff = 1;
            return;
        case 4: case 5: case 6: case 7: { /* SIB with base and index */
            int mod = mode - 4; if (mod > 2) mod = rndn(3);
            b = pick_free(v, mod == 0 ? (1u << EBP) : 0);
            if (b < 0) continue;
            i = pick_free(v, 1u << ESP);
            if (i < 0) { v->used &= ~(1u << b); continue; }
            v->r[i] = rndn(3) ? rnd() : rndn(256);
            d = mod == 0 ? 0 : mod == 1 ? (uint32_t)(int32_t)(int8_t)rnd() : rnd();
            put(v, (uint8_t)((mod << 6) | (regf << 3) | 4));
            put(v, (uint8_t)((s << 6) | (i << 3) | b));
            if (mod == 1) put(v, (uint8_t)d); else if (mod == 2) put_imm(v, d, 4);
            v->r[b] = A - d - (v->r[i] << s);
            return; }
        case 8: /* [index*s + disp32] */
            i = pick_free(v, 1u << ESP);
            if (i < 0) continue;
            v->r[i] = rndn(2) ? rnd() : rndn(0x1000);
            d = A - (v->r[i] << s);
            put(v, (uint8_t)((regf << 3) | 4));
            put(v, (uint8_t)((s << 6) | (i << 3) | 5));
            put_imm(v, d, 4);
            return;
        case 9: /* [esp+disp8] / [esp] with SIB, no index */
            if ((v->used | v->resv) & (1u << ESP)) continue;
            v->used |= 1u << ESP;
            d = rndn(2) ? (uint32_t)(int32_t)(int8_t)rnd() : 0;
            if (d) { put(v, (uint8_t)(0x40 | (regf << 3) | 4)); put(v, (uint8_t)(0x20 | (rndn(4) << 6) | 4)); put(v, (uint8_t)d); }
            else { put(v, (uint8_t)((regf << 3) | 4)); put(v, 0x24); }
            v->r[ESP] = A - d;
            return;
        }
    }
    /* fallback: [disp32] */
    put_c(v, (uint8_t)((regf << 3) | 5));
    put_n(v, (uint8_t)((regf << 3) | 4)); put_n(v, 0x25);
    put_imm(v, A, 4);
    v->ndiff = 1;
}

/* ---------------- manifest bookkeeping ---------------- */
typedef struct { char name[96]; int group; int count; uint32_t undef; } FormRec;
static FormRec *forms; static int nforms, capforms;
static char gnames[32][32]; static int gtotal[32]; static int ngroups;
static int lastform = -1;

static void count_form(const char *name, uint32_t undef)
{
    int idx = -1;
    if (lastform >= 0 && forms[lastform].group == ngroups - 1 && !strcmp(forms[lastform].name, name)) idx = lastform;
    else {
        for (int i = nforms - 1; i >= 0 && forms[i].group == ngroups - 1; i--)
            if (!strcmp(forms[i].name, name)) { idx = i; break; }
    }
    if (idx < 0) {
        if (nforms == capforms) { capforms = capforms ? capforms * 2 : 256; forms = realloc(forms, capforms * sizeof *forms); }
        idx = nforms++;
        snprintf(forms[idx].name, sizeof forms[idx].name, "%s", name);
        forms[idx].group = ngroups - 1; forms[idx].count = 0; forms[idx].undef = 0;
    }
    forms[idx].count++;
    forms[idx].undef |= undef;
    lastform = idx;
    gtotal[ngroups - 1]++;
}

static char cpu_model[128] = "unknown", cpu_vendor[64] = "unknown", gen_date[40];

void group_begin(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.jsonl", outdir, name);
    gf = fopen(path, "w");
    if (!gf) { perror(path); exit(1); }
    gname = name;
    snprintf(gnames[ngroups], sizeof gnames[0], "%s", name);
    gtotal[ngroups] = 0;
    ngroups++;
    fprintf(gf, "{\"format\":\"lguest.ts-cpu-vectors/1\",\"cpu\":\"%s\",\"vendor\":\"%s\",\"generated\":\"%s\","
                "\"mem_base\":%u,\"mem_size\":%u,\"group\":\"%s\",\"host_eflags\":%u,"
                "\"note\":\"Recorded natively on the real CPU in 64-bit user mode (this kernel cannot run 32-bit code); "
                "see test/cpu/native/README.md. EIP and code addresses are relative to the instruction start (mod 2^32). "
                "eflags masked to 0x%x. 'exec' = bytes actually executed when they differ from 'code'.\"}\n",
            cpu_model, cpu_vendor, gen_date, MEM_BASE, MEM_SIZE, name, (uint32_t)(host_flags & 0xFFFFFFFF), F_REC);
}
void group_end(void)
{
    fclose(gf); gf = NULL;
    fprintf(stderr, "%-8s %7d vectors\n", gname, gtotal[ngroups - 1]);
}

static void jstr_mem(FILE *f, const uint8_t *img, uint32_t a, uint32_t n)
{
    fprintf(f, "[%u,\"", a);
    for (uint32_t i = 0; i < n; i++) fprintf(f, "%02x", img[a - MEM_BASE + i]);
    fprintf(f, "\"]");
}

void write_manifest(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/MANIFEST.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fprintf(f, "{\n\"format\":\"lguest.ts-cpu-vectors/1\",\n\"cpu\":\"%s\",\n\"vendor\":\"%s\",\n\"generated\":\"%s\",\n"
               "\"mem_base\":%u,\n\"mem_size\":%u,\n\"files\":{\n", cpu_model, cpu_vendor, gen_date, MEM_BASE, MEM_SIZE);
    for (int g = 0; g < ngroups; g++) {
        fprintf(f, "\"%s.jsonl.gz\":{\"vectors\":%d,\"forms\":[", gnames[g], gtotal[g]);
        int first = 1;
        for (int i = 0; i < nforms; i++) if (forms[i].group == g) { fprintf(f, "%s\"%s\"", first ? "" : ",", forms[i].name); first = 0; }
        fprintf(f, "],\n  \"counts\":{");
        first = 1;
        for (int i = 0; i < nforms; i++) if (forms[i].group == g) { fprintf(f, "%s\"%s\":%d", first ? "" : ",", forms[i].name, forms[i].count); first = 0; }
        fprintf(f, "}}%s\n", g + 1 < ngroups ? "," : "");
    }
    fprintf(f, "},\n\"undefined_flags\":{\n");
    for (int i = 0; i < nforms; i++)
        fprintf(f, "\"%s\":%u%s\n", forms[i].name, forms[i].undef, i + 1 < nforms ? "," : "");
    fprintf(f, "},\n\"recording\":\"native, 64-bit user mode with architecturally equivalent encodings (field exec); see test/cpu/native/README.md\",\n"
               "\"not_covered\":[\"daa\",\"das\",\"aaa\",\"aas\",\"aam\",\"aad\",\"push/pop r32, m32, imm32\",\"push/pop sreg\","
               "\"pusha/popa\",\"pushfd/popfd\",\"call\",\"ret\",\"ret imm16\",\"enter/leave 32-bit\",\"16-bit addressing (0x67)\","
               "\"loop/jcxz with 0x67 (CX)\",\"82 /digit\",\"jmp rel16\",\"mov sreg\"]\n}\n");
    fclose(f);
}

/* ---------------- execution ---------------- */
static volatile uint64_t o_r[8], o_fl, o_rip, o_trap;
static volatile int o_sig;

static void handler(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    o_r[0] = g[REG_RAX]; o_r[1] = g[REG_RCX]; o_r[2] = g[REG_RDX]; o_r[3] = g[REG_RBX];
    o_r[4] = g[REG_RSP]; o_r[5] = g[REG_RBP]; o_r[6] = g[REG_RSI]; o_r[7] = g[REG_RDI];
    o_fl = g[REG_EFL]; o_rip = g[REG_RIP]; o_trap = g[REG_TRAPNO]; o_sig = sig;
    g[REG_RIP] = (greg_t)(uintptr_t)h_resume;
    g[REG_RSP] = (greg_t)h_host_rsp;
    g[REG_EFL] = (greg_t)host_flags;
}

static const char *RN[8] = {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"};

static uint32_t rel_of(uint64_t x) { return (uint32_t)(x - X_ADDR); }

void run(V *v)
{
    uint8_t nat[48]; int nl = 0;
    if (v->need67) nat[nl++] = 0x67;
    memcpy(nat + nl, v->n, v->nl); nl += v->nl;
    int delta = nl - v->cl;
    uint8_t *xp = code + (X_ADDR - delta - CODE_BASE);
    memcpy(xp, nat, nl);

    /* relocate code addresses (relative in the vector, absolute natively) */
    uint32_t rin[8]; memcpy(rin, v->r, sizeof rin);
    if (v->relreg >= 0) rin[v->relreg] += X_ADDR;
    if (v->relmem) wmem(v->relmem, rmem(v->relmem, 4) + X_ADDR, 4);

    memcpy(buf, vmem, MEM_SIZE);
    h_load[0] = rin[EAX]; h_load[1] = rin[ECX]; h_load[2] = rin[EDX]; h_load[3] = rin[EBX];
    h_load[4] = rin[EBP]; h_load[5] = rin[ESI]; h_load[6] = rin[EDI];
    h_load[7] = (host_flags & ~(uint64_t)(F_ARITH | F_DF)) | (v->fl & (F_ARITH | F_DF));
    h_load[8] = rin[ESP];
    h_load[9] = (uint64_t)(uintptr_t)xp;
    o_sig = 0;
    run_vec();
    memset(xp, 0xCC, nl);

    uint32_t out[8];
    int hi = 0;
    for (int i = 0; i < 8; i++) { out[i] = (uint32_t)o_r[i]; if (o_r[i] >> 32) hi = 1; }
    if (v->relreg >= 0) out[v->relreg] -= X_ADDR;
    if (v->relmem) {   /* restore the relative encoding for printing */
        wmem(v->relmem, rmem(v->relmem, 4) - X_ADDR, 4);
        uint32_t o = v->relmem - MEM_BASE;
        uint32_t x = (uint32_t)buf[o] | (uint32_t)buf[o + 1] << 8 | (uint32_t)buf[o + 2] << 16 | (uint32_t)buf[o + 3] << 24;
        x -= X_ADDR;
        for (int k = 0; k < 4; k++) buf[o + k] = (uint8_t)(x >> (8 * k));
    }
    uint32_t eip; int exc = -1;
    if (o_sig == SIGTRAP && o_trap == 3) eip = rel_of(o_rip - 1);
    else {
        exc = (int)o_trap;
        eip = (o_rip == (uint64_t)(uintptr_t)xp) ? 0 : rel_of(o_rip);
        if (!(o_sig == SIGFPE && exc == 0)) {
            unexpected++;
            fprintf(stderr, "unexpected signal %d trap %d in form '%s'\n", o_sig, exc, v->form);
        }
    }
    if (hi) { unexpected++; fprintf(stderr, "upper register bits set in form '%s'\n", v->form); }

    count_form(v->form, v->undef);
    FILE *f = gf;
    fprintf(f, "{\"form\":\"%s\",\"code\":\"", v->form);
    for (int i = 0; i < v->cl; i++) fprintf(f, "%02x", v->c[i]);
    fprintf(f, "\"");
    if (nl != v->cl || memcmp(nat, v->c, nl)) {
        fprintf(f, ",\"exec\":\"");
        for (int i = 0; i < nl; i++) fprintf(f, "%02x", nat[i]);
        fprintf(f, "\"");
    }
    fprintf(f, ",\"in\":{");
    for (int i = 0; i < 8; i++) fprintf(f, "\"%s\":%u,", RN[i], v->r[i]);
    fprintf(f, "\"eflags\":%u,\"mem\":[", (v->fl & F_REC) | 2u);
    /* merge regions */
    uint32_t ra[12], rn[12]; int nr = v->nrin;
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
    fprintf(f, "\"eflags\":%u,\"mem\":[", ((uint32_t)o_fl & F_REC) | 2u);
    first = 1;
    for (uint32_t i = 0; i < MEM_SIZE; ) {
        if (buf[i] == vmem[i]) { i++; continue; }
        uint32_t j = i;
        while (j < MEM_SIZE && buf[j] != vmem[j]) j++;
        if (!first) fputc(',', f);
        jstr_mem(f, buf, MEM_BASE + i, j - i);
        first = 0;
        i = j;
    }
    fprintf(f, "]},\"eip\":%u,\"exception\":", eip);
    if (exc < 0) fprintf(f, "null"); else fprintf(f, "{\"vector\":%d}", exc);
    if (v->undef) fprintf(f, ",\"undef\":%u", v->undef);
    if (v->undef_out) {
        fprintf(f, ",\"undef_out\":[");
        int fo = 1;
        for (int i = 0; i < 9; i++) if (v->undef_out >> i & 1) { fprintf(f, "%s\"%s\"", fo ? "" : ",", i < 8 ? RN[i] : "mem"); fo = 0; }
        fprintf(f, "]");
    }
    fprintf(f, "}\n");
}

static void read_cpuinfo(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    int gotm = 0, gotv = 0;
    while (fgets(line, sizeof line, f) && !(gotm && gotv)) {
        char *c = strchr(line, ':');
        if (!c) continue;
        char *val = c + 2; val[strcspn(val, "\n")] = 0;
        for (char *p = val; *p; p++) if (*p == '"' || *p == '\\') *p = ' ';
        if (!gotm && !strncmp(line, "model name", 10)) { snprintf(cpu_model, sizeof cpu_model, "%s", val); gotm = 1; }
        if (!gotv && !strncmp(line, "vendor_id", 9)) { snprintf(cpu_vendor, sizeof cpu_vendor, "%s", val); gotv = 1; }
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    outdir = argc > 1 ? argv[1] : ".";
    read_cpuinfo();
    time_t t = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) t = (time_t)strtoll(sde, NULL, 10);
    struct tm tm; gmtime_r(&t, &tm);
    strftime(gen_date, sizeof gen_date, "%Y-%m-%dT%H:%M:%SZ", &tm);

    buf = mmap((void *)(uintptr_t)MEM_BASE, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    code = mmap((void *)(uintptr_t)CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (buf == MAP_FAILED || code == MAP_FAILED) { perror("mmap"); return 1; }
    memset(code, 0xCC, CODE_SIZE);

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

    uint64_t fl;
    __asm__ volatile("pushfq; popq %0" : "=r"(fl));
    host_flags = fl & ~(uint64_t)(F_ARITH | F_DF);

    rseed("pristine-memory");
    for (uint32_t i = 0; i < MEM_SIZE; i += 4) { uint32_t x = rnd(); memcpy(pristine + i, &x, 4); }

    const char *only = argc > 2 ? argv[2] : NULL;
#define G(name, fn) if (!only || strstr(only, name)) { group_begin(name); fn(); group_end(); }
    G("arith", gen_arith);
    G("muldiv", gen_muldiv);
    G("shift", gen_shift);
    G("bits", gen_bits);
    G("move", gen_move);
    G("misc", gen_misc);
    G("string", gen_string);
    G("stack", gen_stack);
    G("branch", gen_branch);
    G("hint", gen_hint);
    write_manifest(outdir);
    int total = 0;
    for (int g = 0; g < ngroups; g++) total += gtotal[g];
    fprintf(stderr, "total    %7d vectors, %d forms, %d unexpected\n", total, nforms, unexpected);
    return unexpected ? 2 : 0;
}

/* ---------------- generic ModRM shape ---------------- */
Shape S(int p66, int op0, int op1, int opl, int regf, int sz, int rsz, int mem, int immn)
{
    Shape s; memset(&s, 0, sizeof s);
    s.p66 = p66; s.op[0] = (uint8_t)op0; s.op[1] = (uint8_t)op1; s.opl = opl;
    s.regf = regf; s.sz = sz; s.rsz = rsz ? rsz : sz; s.mem = mem; s.immn = immn;
    return s;
}
ShapeOut shape(V *v, const Shape *s, uint32_t rmval, uint32_t regval, uint32_t imm, uint32_t A)
{
    ShapeOut o = {-1, -1, 0};
    if (s->p66) put(v, 0x66);
    for (int i = 0; i < s->opl; i++) put(v, s->op[i]);
    if (s->regf < 0) o.reg = pick_op(v, s->rsz);
    if (s->mem) {
        if (!A) A = rand_addr();
        o.A = A;
        wmem(A, rmval, s->sz / 8);
        region(v, (A - 8) & ~7u, 32);
        if (o.reg >= 0) setr(v, o.reg, s->rsz, regval);
        modrm_mem(v, s->regf < 0 ? o.reg : s->regf, A);
    } else {
        o.rm = pick_op(v, s->sz);
        setr(v, o.rm, s->sz, rmval);
        if (o.reg >= 0) setr(v, o.reg, s->rsz, regval);
        modrm_reg(v, s->regf < 0 ? o.reg : s->regf, o.rm);
    }
    if (s->immn) put_imm(v, imm, s->immn);
    return o;
}
