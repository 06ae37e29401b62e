/* lguest.ts native test-vector generator for the x87 FPU (see README.md,
 * section "x87").  A separate program from the integer generator: an x87
 * instruction needs no signal handler to observe it, because its whole
 * effect is in the FPU state, which FNSAVE can read back.
 *
 * For each vector we build a 108-byte FRSTOR image (control word, status
 * word with TOP, tag word, eight registers), write a little routine into an
 * executable page:
 *
 *     frstor [in]; push flags; popfq; mov eax, imm32
 *     <the instruction under test>
 *     pushfq; mov [eax_out], eax; pop [flags_out]; fnsave [out]; ret
 *
 * call it, and print the input and output states as one JSON line.
 * Memory operands use [disp32] addressing (the i386 form mod=00 rm=101;
 * executed natively as the equivalent SIB form, since mod=00 rm=101 is
 * RIP-relative in 64-bit mode).  Without REX.W every x87 instruction
 * behaves in 64-bit mode exactly as in 32-bit protected mode, and FNSAVE,
 * FRSTOR, FNSTENV and FLDENV use the 32-bit protected-mode layouts (the 16-bit
 * ones with a 66 prefix); only the instruction and data pointer fields hold
 * host values, which the vectors mark as "ignore".
 *
 * Usage: gen_x87 OUTDIR   (writes OUTDIR/x87.jsonl)  */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define XMEM      0x00100000u    /* the vectors' data memory (linear = physical in the replayer) */
#define XMEM_SIZE 0x00002000u
#define SCRATCH   0x00110000u    /* images and saved registers, not part of the vectors */
#define CODEPAGE  0x00120000u
#define S_IN      (SCRATCH + 0x000)
#define S_OUT     (SCRATCH + 0x100)
#define S_EAX     (SCRATCH + 0x200)
#define S_FLAGS   (SCRATCH + 0x208)

#define F_CF 0x001u
#define F_PF 0x004u
#define F_AF 0x010u
#define F_ZF 0x040u
#define F_SF 0x080u
#define F_OF 0x800u
#define F_ARITH 0x8D5u

/* status word */
#define SW_IE 0x0001
#define SW_DE 0x0002
#define SW_ZE 0x0004
#define SW_OE 0x0008
#define SW_UE 0x0010
#define SW_PE 0x0020
#define SW_SF 0x0040
#define SW_ES 0x0080
#define SW_C0 0x0100
#define SW_C1 0x0200
#define SW_C2 0x0400
#define SW_C3 0x4000
#define SW_B  0x8000

typedef struct { uint64_t sig; uint16_t se; } f80;

static uint8_t *mem, *scratch, *code;
static uint8_t vmem[XMEM_SIZE], pristine[XMEM_SIZE];
static FILE *out;
static int total, nforms;
static char lastform[96];
static uint32_t host_flags;

/* ---------------- random: splitmix64, seeded from each form's name ---------------- */
static uint64_t rs;
static uint64_t r64(void)
{
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static void rseed(const char *s)
{
    uint64_t h = 1469598103934665603ull ^ 0x783837782e747321ull;
    while (*s) { h ^= (uint8_t)*s++; h *= 1099511628211ull; }
    rs = h;
}
static uint32_t rnd(void) { return (uint32_t)(r64() >> 32); }
static uint32_t rndn(uint32_t n) { return (uint32_t)(((uint64_t)rnd() * n) >> 32); }

/* ---------------- values ---------------- */
static f80 mk(int sign, int exp, uint64_t sig) { f80 f = {sig, (uint16_t)((sign ? 0x8000 : 0) | exp)}; return f; }

/* Edge values: every class of extended-precision number, the boundaries
 * of the ranges, and significands that sit exactly halfway for 24-, 53- and
 * 64-bit rounding. */
static const f80 EDGE[] = {
    {0, 0}, {0, 0x8000},
    {1, 0}, {1, 0x8000},                                          /* smallest denormal */
    {0x7FFFFFFFFFFFFFFFull, 0}, {0x0000000100000001ull, 0x8000},  /* denormals */
    {0x8000000000000000ull, 1}, {0x8000000000000000ull, 0x8001},  /* smallest normal */
    {0xFFFFFFFFFFFFFFFFull, 0x7FFE}, {0xFFFFFFFFFFFFFFFFull, 0xFFFE}, /* largest */
    {0x8000000000000000ull, 0x3FFF}, {0x8000000000000000ull, 0xBFFF}, /* 1 */
    {0xC000000000000000ull, 0x3FFF}, {0xC000000000000000ull, 0xC000}, /* 1.5, -3 */
    {0x8000000000000000ull, 0x4000},                               /* 2 */
    {0x8000000000000001ull, 0x3FFF}, {0xFFFFFFFFFFFFFFFFull, 0x3FFE}, /* 1 + ulp, 1 - ulp/2 */
    {0x8000000000000400ull, 0x3FFF}, {0x8000000000000C00ull, 0xBFFF}, /* halfway at 53 bits */
    {0x80000000000007FFull, 0x3FFF}, {0x8000000000000401ull, 0x3FFF},
    {0x8000008000000000ull, 0x3FFF}, {0x8000018000000000ull, 0xBFFF}, /* halfway at 24 bits */
    {0xC90FDAA22168C235ull, 0x4000},                               /* pi */
    {0x8000000000000000ull, 0x7FFF}, {0x8000000000000000ull, 0xFFFF}, /* infinities */
    {0xC000000000000000ull, 0x7FFF}, {0xC000000000000000ull, 0xFFFF}, /* QNaN, real indefinite */
    {0xC000000000001234ull, 0x7FFF}, {0xE000000000000000ull, 0xFFFF}, /* QNaN payloads */
    {0x8000000000000001ull, 0x7FFF}, {0xA000000000000000ull, 0xFFFF}, /* SNaN */
    {0x8000000000000000ull, 0x403E}, {0xFFFFFFFFFFFFF800ull, 0x43FE}, /* 2^63, DBL_MAX */
    {0x8000000000000000ull, 0x3C01}, {0xFFFFFF0000000000ull, 0x407E}, /* DBL_MIN, FLT_MAX */
    {0x8000000000000000ull, 0x3F81}, {0x8000000000000000ull, 0x3BCD}, /* FLT_MIN, DBL_TRUE_MIN */
};
#define NEDGE ((int)(sizeof EDGE / sizeof EDGE[0]))

/* Formats the hardware does not support; they only arrive by loading 80 bits. */
static const f80 ODD[] = {
    {0x4000000000000000ull, 0x3FFF}, /* unnormal */
    {0x0000000000000000ull, 0x7FFF}, /* pseudo-infinity */
    {0x4000000000000001ull, 0xFFFF}, /* pseudo-NaN */
    {0x8000000000000001ull, 0x0000}, /* pseudo-denormal */
    {0x8000000000000000ull, 0x8000}, /* pseudo-denormal, the smallest normal's twin */
};
#define NODD ((int)(sizeof ODD / sizeof ODD[0]))

static uint64_t rnd64(void) { return r64(); }

/* A significand with its integer bit set, often with low bits that make
 * rounding at 24, 53 or 64 bits interesting. */
static uint64_t rsig(void)
{
    uint64_t s = rnd64() | 0x8000000000000000ull;
    static const int cut[3] = {40, 11, 0};
    switch (rndn(8)) {
    case 0: { /* exact tie or near tie below a precision boundary */
        int c = cut[rndn(2)];
        uint64_t half = 1ull << (c - 1);
        s &= ~((1ull << c) - 1);
        s |= (uint64_t[]){half, half - 1, half + 1, 0, (1ull << c) - 1}[rndn(5)];
        break; }
    case 1: { /* sparse: few bits set, so products and quotients are often exact or ties */
        s = 0x8000000000000000ull;
        int n = rndn(4);
        for (int k = 0; k < n; k++) s |= 1ull << rndn(64);
        break; }
    case 2: /* a short significand (a float or double value) */
        s &= rndn(2) ? 0xFFFFFF0000000000ull : 0xFFFFFFFFFFFFF800ull;
        break;
    default: break;
    }
    return s;
}

/* A random value of every class, with emphasis on the ordinary. */
static f80 rval(void)
{
    int sign = rndn(2);
    switch (rndn(20)) {
    case 0: case 1: return EDGE[rndn(NEDGE)];
    case 2: return mk(sign, 0, rnd64() >> rndn(64));                       /* denormal */
    case 3: return mk(sign, 1 + rndn(80), rsig());                         /* near underflow */
    case 4: return mk(sign, 0x7FFE - rndn(80), rsig());                    /* near overflow */
    case 5: return mk(sign, 0x3FFF - 16000 + rndn(32000), rsig());        /* anywhere */
    case 6: return mk(sign, 0x3F81 + rndn(8) - 4, rsig());                 /* around FLT_MIN */
    case 7: return mk(sign, 0x3C01 + rndn(80) - 60, rsig());               /* around DBL_MIN, its denormals */
    case 8: return mk(sign, 0x407E + rndn(6) - 3, rsig());                 /* around FLT_MAX */
    case 9: return mk(sign, 0x43FE + rndn(6) - 3, rsig());                 /* around DBL_MAX */
    case 10: { uint64_t k = 1 + rndn(1000); int e = 63; while (!(k >> 63)) { k <<= 1; e--; }
               return mk(sign, 0x3FFF + e - 63 + (int)rndn(9) - 4, k); }    /* small integers and halves */
    default: return mk(sign, 0x3FFF + (int)rndn(80) - 40, rsig());
    }
}

/* b related to a: the same or nearby exponents, for cancellation, alignment shifts and ties. */
static f80 related(f80 a)
{
    int e = a.se & 0x7FFF;
    if (e == 0 || e == 0x7FFF) return rval();
    static const int d[] = {0, 0, 0, 1, -1, 2, -2, 23, 24, 25, 52, 53, 54, 62, 63, 64, 65, 66, -63, -64, -65};
    int ne = e - d[rndn(sizeof d / sizeof d[0])];
    if (ne < 1 || ne > 0x7FFE) return rval();
    uint64_t s = rndn(3) ? rsig() : (rndn(2) ? a.sig : a.sig ^ (1ull << rndn(63)));
    return mk(rndn(2), ne, s);
}

/* ---------------- float32 / float64 / integers for memory operands ---------------- */
static uint32_t rf32(void)
{
    static const uint32_t E[] = {0, 0x80000000, 1, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0x3F800000,
        0xBFC00000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFA00000, 0x7FC12345, 0x00400000};
    if (rndn(5) == 0) return E[rndn(sizeof E / sizeof E[0])];
    uint32_t s = rndn(2) << 31, m = rnd() & 0x7FFFFF;
    uint32_t e = rndn(4) ? 127 + rndn(60) - 30 : rndn(256);
    if (rndn(6) == 0) m &= 0x7FF000;
    return s | (e << 23) | m;
}
static uint64_t rf64(void)
{
    static const uint64_t E[] = {0, 0x8000000000000000ull, 1, 0x800FFFFFFFFFFFFFull, 0x0010000000000000ull,
        0x7FEFFFFFFFFFFFFFull, 0x3FF0000000000000ull, 0xBFF8000000000000ull, 0x7FF0000000000000ull,
        0xFFF0000000000000ull, 0x7FF8000000000000ull, 0xFFF8000000000000ull, 0x7FF0000000000001ull,
        0xFFF4000000000000ull, 0x7FF8000000012345ull, 0x0008000000000000ull};
    if (rndn(5) == 0) return E[rndn(sizeof E / sizeof E[0])];
    uint64_t s = (uint64_t)rndn(2) << 63, m = rnd64() & 0xFFFFFFFFFFFFFull;
    uint64_t e = rndn(4) ? 1023 + rndn(120) - 60 : rndn(2048);
    if (rndn(6) == 0) m &= 0xFFFFFF0000000ull;
    return s | (e << 52) | m;
}
static uint64_t rint_bits(int bits)
{
    static const int64_t E[] = {0, 1, -1, 2, -2, 127, 255, 32767, -32768, 65535, 0x7FFFFFFF, -0x7FFFFFFF - 1,
        0x7FFFFFFFFFFFFFFFll, (int64_t)0x8000000000000000ull, 1000000007, 0x100000000ll};
    int64_t x;
    switch (rndn(5)) {
    case 0: x = E[rndn(sizeof E / sizeof E[0])]; break;
    case 1: x = (int64_t)rndn(200) - 100; break;
    default: x = (int64_t)rnd64() >> rndn(64); break;
    }
    if (bits < 64) x = (int64_t)((uint64_t)x << (64 - bits)) >> (64 - bits);
    return (uint64_t)x;
}

/* ---------------- the state image and a vector ---------------- */
typedef struct {
    char form[96];
    uint8_t c[24]; int cl;      /* i386 bytes */
    uint8_t n[24]; int nl;      /* native bytes */
    uint8_t img[108];           /* input FNSAVE/FRSTOR image */
    uint32_t fl, eax;
    uint32_t ra[4], rn[4]; int nr;   /* in.mem regions */
    uint32_t ia[4], in_[4]; int ni;  /* output bytes to ignore (host instruction/data pointers) */
    uint16_t undef_sw;
    int approx;
} XV;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr16(uint8_t *p, uint16_t x) { p[0] = (uint8_t)x; p[1] = (uint8_t)(x >> 8); }

static int top_of(XV *v) { return (rd16(v->img + 4) >> 11) & 7; }
static int tag_of(f80 f)
{
    int e = f.se & 0x7FFF;
    if (e == 0x7FFF) return 2;
    if (e == 0) return f.sig ? 2 : 1;
    return f.sig >> 63 ? 0 : 2;
}
static void set_tag(XV *v, int i, int tag)
{
    int phys = (top_of(v) + i) & 7;
    uint16_t tw = rd16(v->img + 8);
    tw = (uint16_t)((tw & ~(3u << (2 * phys))) | (unsigned)tag << (2 * phys));
    wr16(v->img + 8, tw);
}
/* st(i) := f, tagged as the hardware would tag it */
static void st(XV *v, int i, f80 f)
{
    uint8_t *p = v->img + 28 + 10 * i;
    memcpy(p, &f.sig, 8);
    wr16(p + 8, f.se);
    set_tag(v, i, tag_of(f));
}
static void empty(XV *v, int i) { set_tag(v, i, 3); }
static f80 get_st(const uint8_t *img, int i) { f80 f; memcpy(&f.sig, img + 28 + 10 * i, 8); f.se = rd16(img + 36 + 10 * i); return f; }

#define CW_MASKED 0x007F   /* all exceptions masked, bit 6 set as FNSTCW shows it */
static uint16_t cw_of(int pc, int rc) { return (uint16_t)(CW_MASKED | pc << 8 | rc << 10); }
static const int PCS[3] = {0, 2, 3}; /* 24, 53, 64 bits */
/* The i-th of the twelve precision x rounding combinations. */
static uint16_t cw12(int i) { return cw_of(PCS[(i / 4) % 3], i % 4); }
static uint16_t cw_random(void) { return cw12(rndn(12)); }

static void set_cw(XV *v, uint16_t cw) { wr16(v->img, cw); }
static uint16_t get_cw(XV *v) { return rd16(v->img); }

/* A status word for the input: random condition codes, sometimes sticky
 * flags that are already set (but never an unmasked one, which would make
 * the instruction under test raise #MF), ES and B consistent. */
static void set_sw(XV *v, int top, int allow_pending)
{
    uint16_t cw = get_cw(v);
    uint16_t sw = (uint16_t)(top << 11);
    sw |= (uint16_t)(rnd() & (SW_C0 | SW_C1 | SW_C2 | SW_C3));
    if (rndn(4) == 0) sw |= (uint16_t)(rnd() & 0x3F);
    if (rndn(8) == 0) sw |= SW_SF;
    if (!allow_pending) sw &= (uint16_t)~(0x3F & ~cw);
    if (sw & 0x3F & ~cw) sw |= SW_ES | SW_B;
    wr16(v->img + 4, sw);
}

static void vbegin(XV *v, const char *form)
{
    memset(v, 0, sizeof *v);
    snprintf(v->form, sizeof v->form, "%s", form);
    memcpy(vmem, pristine, XMEM_SIZE);
    set_cw(v, cw_random());
    wr16(v->img + 8, 0xFFFF);
    set_sw(v, rndn(8), 0);
    /* registers: contents from a small pool (so the files compress), half of them empty */
    static const f80 POOL[4] = {{0xA000000000000000ull, 0x4001}, {0xC90FDAA22168C235ull, 0xC000},
                                {0x8000000000000000ull, 0x3FFF}, {0xDEADBEEFCAFEF00Dull, 0x1234}};
    for (int i = 0; i < 8; i++) {
        f80 f = POOL[rndn(4)];
        uint8_t *p = v->img + 28 + 10 * i;
        memcpy(p, &f.sig, 8); wr16(p + 8, f.se);
        if (rndn(2)) set_tag(v, i, tag_of(f));
    }
    v->fl = (rnd() & F_ARITH) | 2u;
    v->eax = 0x11223344;
}

static void put(XV *v, uint8_t b) { v->c[v->cl++] = b; v->n[v->nl++] = b; }
static void put32(XV *v, uint32_t x) { for (int k = 0; k < 4; k++) put(v, (uint8_t)(x >> 8 * k)); }
/* opcode with a register ModRM: op, C0 + reg*8 + rm */
static void ins_reg(XV *v, uint8_t op, int reg, int rm) { put(v, op); put(v, (uint8_t)(0xC0 | reg << 3 | rm)); }
/* opcode with a [disp32] memory operand */
static void ins_mem(XV *v, int p66, uint8_t op, int reg, uint32_t A)
{
    if (p66) put(v, 0x66);
    put(v, op);
    v->c[v->cl++] = (uint8_t)(reg << 3 | 5);
    v->n[v->nl++] = (uint8_t)(reg << 3 | 4);
    v->n[v->nl++] = 0x25;
    put32(v, A);
}
static void region(XV *v, uint32_t a, uint32_t n)
{
    if (a < XMEM) { n -= XMEM - a; a = XMEM; }
    if (a + n > XMEM + XMEM_SIZE) n = XMEM + XMEM_SIZE - a;
    v->ra[v->nr] = a; v->rn[v->nr] = n; v->nr++;
}
static void ignore(XV *v, uint32_t a, uint32_t n) { v->ia[v->ni] = a; v->in_[v->ni] = n; v->ni++; }
/* A random operand address; often unaligned, sometimes across the page boundary at XMEM + 0x1000. */
static uint32_t maddr(int size)
{
    uint32_t a = rndn(6) == 0 ? XMEM + 0x1000 - rndn(size + 1) : XMEM + 0x100 + rndn(XMEM_SIZE - 0x200 - size);
    if (rndn(2)) a &= ~7u;
    return a;
}
static void wm(uint32_t a, const void *p, int n) { memcpy(vmem + (a - XMEM), p, n); }

/* ---------------- running and printing ---------------- */
static void sigfpe(int sig)
{
    fprintf(stderr, "gen_x87: signal %d in form '%s' (an unmasked exception was pending?)\n", sig, lastform);
    _exit(3);
}

static void hex(FILE *f, const uint8_t *p, int n) { for (int i = 0; i < n; i++) fprintf(f, "%02x", p[i]); }
static void print_fpu(FILE *f, const uint8_t *img)
{
    fprintf(f, "\"fpu\":{\"cw\":%u,\"sw\":%u,\"tw\":%u,\"st\":[", rd16(img), rd16(img + 4), rd16(img + 8));
    for (int i = 0; i < 8; i++) {
        f80 x = get_st(img, i);
        fprintf(f, "%s\"%04x%016llx\"", i ? "," : "", x.se, (unsigned long long)x.sig);
    }
    fprintf(f, "]}");
}
static void print_mem_regions(FILE *f, XV *v)
{
    /* sort and merge */
    for (int i = 0; i < v->nr; i++) for (int j = i + 1; j < v->nr; j++)
        if (v->ra[j] < v->ra[i]) { uint32_t t = v->ra[i]; v->ra[i] = v->ra[j]; v->ra[j] = t; t = v->rn[i]; v->rn[i] = v->rn[j]; v->rn[j] = t; }
    int first = 1;
    for (int i = 0; i < v->nr; ) {
        uint32_t a = v->ra[i], e = a + v->rn[i];
        int j = i + 1;
        while (j < v->nr && v->ra[j] <= e) { if (v->ra[j] + v->rn[j] > e) e = v->ra[j] + v->rn[j]; j++; }
        fprintf(f, "%s[%u,\"", first ? "" : ",", a); hex(f, vmem + (a - XMEM), (int)(e - a)); fprintf(f, "\"]");
        first = 0;
        i = j;
    }
}

static uint32_t reserved_seen[3];

static void run(XV *v)
{
    snprintf(lastform, sizeof lastform, "%s", v->form);
    uint8_t *p = code;
#define B(x) (*p++ = (uint8_t)(x))
#define D(x) do { uint32_t d_ = (x); memcpy(p, &d_, 4); p += 4; } while (0)
    B(0xDD); B(0x24); B(0x25); D(S_IN);              /* frstor [S_IN] */
    B(0x68); D((v->fl & F_ARITH) | host_flags);      /* push imm32 */
    B(0x9D);                                          /* popfq */
    B(0xB8); D(v->eax);                               /* mov eax, imm32 */
    memcpy(p, v->n, v->nl); p += v->nl;
    B(0x9C);                                          /* pushfq */
    B(0x89); B(0x04); B(0x25); D(S_EAX);              /* mov [S_EAX], eax */
    B(0x8F); B(0x04); B(0x25); D(S_FLAGS);            /* pop qword [S_FLAGS] */
    B(0xDD); B(0x34); B(0x25); D(S_OUT);              /* fnsave [S_OUT] */
    B(0xC3);
    memcpy(scratch + (S_IN - SCRATCH), v->img, 108);
    memset(scratch + (S_OUT - SCRATCH), 0, 108);
    memcpy(mem, vmem, XMEM_SIZE);
    __asm__ volatile("" ::: "memory");
    ((void (*)(void))code)();
    __asm__ volatile("" ::: "memory");

    const uint8_t *o = scratch + (S_OUT - SCRATCH);
    uint32_t eax_out, fl_out;
    memcpy(&eax_out, scratch + (S_EAX - SCRATCH), 4);
    memcpy(&fl_out, scratch + (S_FLAGS - SCRATCH), 4);
    reserved_seen[0] |= (uint32_t)rd16(o + 2) << 16 | rd16(o + 6);
    reserved_seen[1] |= rd16(o + 10);

    if (strcmp(v->form, lastform) || !total) {}
    static char prev[96];
    if (strcmp(prev, v->form)) { nforms++; snprintf(prev, sizeof prev, "%s", v->form); }
    total++;

    FILE *f = out;
    fprintf(f, "{\"form\":\"%s\",\"code\":\"", v->form); hex(f, v->c, v->cl); fprintf(f, "\"");
    if (v->cl != v->nl || memcmp(v->c, v->n, v->nl)) { fprintf(f, ",\"exec\":\""); hex(f, v->n, v->nl); fprintf(f, "\""); }
    fprintf(f, ",\"in\":{\"eax\":%u,\"eflags\":%u,\"mem\":[", v->eax, (v->fl & F_ARITH) | 2u);
    print_mem_regions(f, v);
    fprintf(f, "],");
    print_fpu(f, v->img);
    fprintf(f, "},\"out\":{\"eax\":%u,\"eflags\":%u,\"mem\":[", eax_out, (fl_out & F_ARITH) | 2u);
    int first = 1;
    for (uint32_t i = 0; i < XMEM_SIZE; ) {
        if (mem[i] == vmem[i]) { i++; continue; }
        uint32_t j = i;
        while (j < XMEM_SIZE && mem[j] != vmem[j]) j++;
        fprintf(f, "%s[%u,\"", first ? "" : ",", XMEM + i); hex(f, mem + i, (int)(j - i)); fprintf(f, "\"]");
        first = 0;
        i = j;
    }
    fprintf(f, "],");
    print_fpu(f, o);
    fprintf(f, "},\"eip\":%d", v->cl);
    if (v->ni) {
        fprintf(f, ",\"ignore\":[");
        for (int i = 0; i < v->ni; i++) fprintf(f, "%s[%u,%u]", i ? "," : "", v->ia[i], v->in_[i]);
        fprintf(f, "]");
    }
    if (v->undef_sw) fprintf(f, ",\"undef_sw\":%u", v->undef_sw);
    if (v->approx) fprintf(f, ",\"approx\":true");
    fprintf(f, "}\n");
}

/* ---------------- the families ---------------- */
static const char *ARITH[8] = {"fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"};
static const int ARITH_OPS[6] = {0, 1, 4, 5, 6, 7};

/* Sometimes an operand register is empty, to see the stack underflow response. */
static void maybe_empty(XV *v, int i) { if (rndn(40) == 0) empty(v, i); }

/* fop st, st(i) (D8), fop st(i), st (DC) and fopp st(i), st (DE) */
static void arith_reg(void)
{
    for (int k = 0; k < 6; k++) {
        int op = ARITH_OPS[k];
        char name[64];
        snprintf(name, sizeof name, "%s st, st(i)", ARITH[op]);
        rseed(name);
        /* every pair of edge values, each with one of the twelve control words */
        int n = 0;
        for (int a = 0; a < NEDGE; a++) for (int b = 0; b < NEDGE; b++) {
            XV v; vbegin(&v, name);
            int i = 1 + rndn(7);
            set_cw(&v, cw12(n++));
            set_sw(&v, top_of(&v), 0);
            st(&v, 0, EDGE[a]); st(&v, i, EDGE[b]);
            ins_reg(&v, 0xD8, op, i);
            run(&v);
        }
        /* random and related pairs under all twelve control words */
        for (int r = 0; r < 200; r++) {
            f80 a = rval(), b = rndn(2) ? related(a) : rval();
            if (rndn(2)) { f80 t = a; a = b; b = t; }
            int i = rndn(8);
            for (int c = 0; c < 12; c++) {
                XV v; vbegin(&v, name);
                set_cw(&v, cw12(c));
                set_sw(&v, top_of(&v), 0);
                st(&v, i, b); st(&v, 0, a);
                maybe_empty(&v, 0); maybe_empty(&v, i);
                ins_reg(&v, 0xD8, op, i);
                run(&v);
            }
        }
        /* unsupported formats against everything */
        for (int r = 0; r < 60; r++) {
            XV v; vbegin(&v, name);
            int i = 1 + rndn(7);
            f80 a = ODD[rndn(NODD)], b = rval();
            if (rndn(2)) { f80 t = a; a = b; b = t; }
            st(&v, 0, a); st(&v, i, b);
            ins_reg(&v, 0xD8, op, i);
            run(&v);
        }
        /* the other directions: st(i) = st(i) op st, with and without a pop */
        for (int form = 0; form < 2; form++) {
            /* DC/DE swap sub<->subr and div<->divr in the register forms */
            int rop = op >= 4 ? op ^ 1 : op;
            snprintf(name, sizeof name, "%s%s st(i), st", ARITH[rop], form ? "p" : "");
            rseed(name);
            for (int r = 0; r < 250; r++) {
                XV v; vbegin(&v, name);
                int i = rndn(8);
                set_sw(&v, top_of(&v), 0);
                f80 a = rval(), b = rndn(2) ? related(a) : rval();
                st(&v, i, b); st(&v, 0, a);
                maybe_empty(&v, 0); maybe_empty(&v, i);
                ins_reg(&v, form ? 0xDE : 0xDC, op, i);
                run(&v);
            }
        }
    }
}

/* fop m32fp (D8), m64fp (DC), m32int (DA), m16int (DE); also fcom/fcomp with memory */
static void arith_mem(void)
{
    static const char *KIND[4] = {"m32fp", "m64fp", "m32int", "m16int"};
    static const char *PREFIX[4] = {"", "", "fi", "fi"};
    static const uint8_t OPC[4] = {0xD8, 0xDC, 0xDA, 0xDE};
    for (int kind = 0; kind < 4; kind++) for (int op = 0; op < 8; op++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s %s", PREFIX[kind], ARITH[op] + (kind >= 2 ? 1 : 0), KIND[kind]);
        rseed(name);
        int count = op == 2 || op == 3 ? 150 : 360;
        for (int r = 0; r < count; r++) {
            XV v; vbegin(&v, name);
            set_cw(&v, cw12(r));
            set_sw(&v, top_of(&v), 0);
            int size = kind == 0 ? 4 : kind == 1 ? 8 : kind == 2 ? 4 : 2;
            uint32_t A = maddr(size);
            uint64_t m = kind == 0 ? rf32() : kind == 1 ? rf64() : rint_bits(size * 8);
            wm(A, &m, size);
            region(&v, A - 8, size + 16);
            f80 a = rval();
            if (rndn(3) == 0 && kind == 0) { uint32_t x = (uint32_t)m; if (((x >> 23) & 0xFF) && ((x >> 23) & 0xFF) < 255) a = related(mk(x >> 31, (int)((x >> 23) & 0xFF) - 127 + 0x3FFF, (uint64_t)(x | 0x800000) << 40)); }
            if (rndn(3) == 0 && kind == 1) { uint64_t x = m; int e = (int)((x >> 52) & 0x7FF); if (e && e < 2047) a = related(mk((int)(x >> 63), e - 1023 + 0x3FFF, (x | 1ull << 52) << 11)); }
            st(&v, 0, a);
            maybe_empty(&v, 0);
            ins_mem(&v, 0, OPC[kind], op, A);
            run(&v);
        }
    }
}

/* comparisons with registers and the unordered and flag-setting kinds */
static void compares(void)
{
    struct { const char *name; uint8_t op, base; int pops; } F[] = {
        {"fcom st(i)", 0xD8, 0xD0, 0}, {"fcomp st(i)", 0xD8, 0xD8, 1}, {"fucom st(i)", 0xDD, 0xE0, 0},
        {"fucomp st(i)", 0xDD, 0xE8, 1}, {"fcomi st, st(i)", 0xDB, 0xF0, 0}, {"fucomi st, st(i)", 0xDB, 0xE8, 0},
        {"fcomip st, st(i)", 0xDF, 0xF0, 1}, {"fucomip st, st(i)", 0xDF, 0xE8, 1},
        {"fcompp", 0xDE, 0xD9, 2}, {"fucompp", 0xDA, 0xE9, 2},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        int fixed = F[k].pops == 2;
        for (int a = 0; a < NEDGE; a++) for (int b = 0; b < NEDGE; b += 1 + (k > 1)) {
            XV v; vbegin(&v, F[k].name);
            int i = fixed ? 1 : rndn(8);
            st(&v, i, EDGE[b]); st(&v, 0, EDGE[a]);
            maybe_empty(&v, 0); maybe_empty(&v, i);
            if (fixed) put(&v, F[k].op), put(&v, F[k].base); else ins_reg(&v, F[k].op, (F[k].base >> 3) & 7, i);
            run(&v);
        }
        for (int r = 0; r < 250; r++) {
            XV v; vbegin(&v, F[k].name);
            int i = fixed ? 1 : rndn(8);
            f80 a = rval(), b = rndn(3) == 0 ? a : rndn(2) ? related(a) : rval();
            if (rndn(10) == 0) a = ODD[rndn(NODD)];
            st(&v, i, b); st(&v, 0, a);
            maybe_empty(&v, 0); maybe_empty(&v, i);
            if (fixed) put(&v, F[k].op), put(&v, F[k].base); else ins_reg(&v, F[k].op, (F[k].base >> 3) & 7, i);
            run(&v);
        }
    }
    /* ftst and fxam */
    const char *names[2] = {"ftst", "fxam"};
    for (int k = 0; k < 2; k++) {
        rseed(names[k]);
        for (int r = 0; r < NEDGE + NODD + 200; r++) {
            XV v; vbegin(&v, names[k]);
            f80 a = r < NEDGE ? EDGE[r] : r < NEDGE + NODD ? ODD[r - NEDGE] : rval();
            st(&v, 0, a);
            if (rndn(8) == 0) empty(&v, 0);
            put(&v, 0xD9); put(&v, k ? 0xE5 : 0xE4);
            run(&v);
        }
    }
}

/* one-operand arithmetic on st(0) */
static void unary(void)
{
    struct { const char *name; uint8_t b; int n; } F[] = {
        {"fchs", 0xE0, 100}, {"fabs", 0xE1, 100}, {"fsqrt", 0xFA, 1500}, {"frndint", 0xFC, 1500},
        {"fxtract", 0xF4, 400},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        for (int r = 0; r < F[k].n; r++) {
            XV v; vbegin(&v, F[k].name);
            set_cw(&v, cw12(r));
            set_sw(&v, top_of(&v), 0);
            f80 a = r < NEDGE * 12 ? EDGE[r / 12] : rndn(30) == 0 ? ODD[rndn(NODD)] : rval();
            if (k == 3 && rndn(2)) { /* values with few integer bits: halves, near halves */
                int e = rndn(66);
                a = mk(rndn(2), 0x3FFF + e - 1, rsig());
            }
            st(&v, 0, a);
            maybe_empty(&v, 0);
            put(&v, 0xD9); put(&v, F[k].b);
            run(&v);
        }
    }
}

/* fscale, fprem, fprem1: st(0) and st(1) */
static void twoop(void)
{
    struct { const char *name; uint8_t b; int n; } F[] = {
        {"fscale", 0xFD, 1500}, {"fprem", 0xF8, 1500}, {"fprem1", 0xF5, 1500},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        for (int r = 0; r < F[k].n; r++) {
            XV v; vbegin(&v, F[k].name);
            set_cw(&v, cw12(r));
            set_sw(&v, top_of(&v), 0);
            f80 a, b;
            if (r < NEDGE * NEDGE / 2) { a = EDGE[rndn(NEDGE)]; b = EDGE[rndn(NEDGE)]; }
            else if (k == 0) {
                a = rval();
                switch (rndn(4)) {
                case 0: b = mk(rndn(2), 0x3FFF + rndn(16), rsig()); break;             /* up to 2^16 */
                case 1: b = mk(rndn(2), 0x3FFF + rndn(3) - 1, rsig()); break;          /* fractions */
                case 2: { int s = (int)rndn(40000) - 20000; uint64_t m = (uint64_t)(s < 0 ? -s : s);
                          if (!m) { b = mk(0, 0, 0); break; }
                          int e = 63; while (!(m >> 63)) { m <<= 1; e--; } b = mk(s < 0, 0x3FFF + e - 63 + 63, m); break; }
                default: b = rval(); break;
                }
            } else {
                b = rval();
                int e = b.se & 0x7FFF;
                if (e && e < 0x7FFF && rndn(3)) {
                    int d = rndn(2) ? (int)rndn(70) : (int)rndn(300);
                    int ea = e + d; if (ea > 0x7FFE) ea = 0x7FFE;
                    a = mk(rndn(2), ea, rsig());
                } else a = rval();
            }
            st(&v, 1, b); st(&v, 0, a);
            maybe_empty(&v, 0); maybe_empty(&v, 1);
            put(&v, 0xD9); put(&v, F[k].b);
            run(&v);
        }
    }
}

/* loads: floats, integers, BCD, registers and constants */
static void put_bcd(uint8_t *b, int sign, uint64_t value)
{
    for (int k = 0; k < 9; k++) { b[k] = (uint8_t)((value % 10) | (value / 10 % 10) << 4); value /= 100; }
    b[9] = sign ? 0x80 : 0;
}
static void loads(void)
{
    static const char *KIND[3] = {"fld m32fp", "fld m64fp", "fld m80fp"};
    for (int kind = 0; kind < 3; kind++) {
        rseed(KIND[kind]);
        for (int r = 0; r < 700; r++) {
            XV v; vbegin(&v, KIND[kind]);
            set_sw(&v, top_of(&v), 0);
            int size = kind == 0 ? 4 : kind == 1 ? 8 : 10;
            uint32_t A = maddr(size);
            uint8_t b[10];
            if (kind == 0) { uint32_t x = rf32(); memcpy(b, &x, 4); }
            else if (kind == 1) { uint64_t x = rf64(); memcpy(b, &x, 8); }
            else { f80 f = rndn(10) == 0 ? ODD[rndn(NODD)] : rval(); memcpy(b, &f.sig, 8); wr16(b + 8, f.se); }
            wm(A, b, size);
            region(&v, A - 8, size + 16);
            if (rndn(8) == 0) st(&v, 7, rval()); /* a full stack: overflow */
            ins_mem(&v, 0, kind == 0 ? 0xD9 : kind == 1 ? 0xDD : 0xDB, kind == 2 ? 5 : 0, A);
            run(&v);
        }
    }
    static const char *IKIND[3] = {"fild m16int", "fild m32int", "fild m64int"};
    for (int kind = 0; kind < 3; kind++) {
        rseed(IKIND[kind]);
        for (int r = 0; r < 300; r++) {
            XV v; vbegin(&v, IKIND[kind]);
            set_sw(&v, top_of(&v), 0);
            int size = 2 << kind;
            uint32_t A = maddr(size);
            uint64_t x = rint_bits(size * 8);
            wm(A, &x, size);
            region(&v, A - 8, size + 16);
            if (rndn(8) == 0) st(&v, 7, rval());
            ins_mem(&v, 0, kind == 0 ? 0xDF : kind == 1 ? 0xDB : 0xDF, kind == 2 ? 5 : 0, A);
            run(&v);
        }
    }
    rseed("fbld m80bcd");
    for (int r = 0; r < 400; r++) {
        XV v; vbegin(&v, "fbld m80bcd");
        set_sw(&v, top_of(&v), 0);
        uint32_t A = maddr(10);
        uint8_t b[10];
        uint64_t value = r < 4 ? (uint64_t[]){0, 1, 999999999999999999ull, 100000000000000000ull}[r]
                               : (rnd64() % 1000000000000000000ull) >> (rndn(4) * 15);
        put_bcd(b, rndn(2), value);
        if (rndn(6) == 0) b[9] |= (uint8_t)(rnd() & 0x7F); /* the sign byte's other bits are ignored */
        wm(A, b, 10);
        region(&v, A - 8, 26);
        if (rndn(8) == 0) st(&v, 7, rval());
        ins_mem(&v, 0, 0xDF, 4, A);
        run(&v);
    }
    rseed("fld st(i)");
    for (int r = 0; r < 300; r++) {
        XV v; vbegin(&v, "fld st(i)");
        set_sw(&v, top_of(&v), 0);
        int i = rndn(8);
        st(&v, i, rndn(8) ? rval() : ODD[rndn(NODD)]);
        if (rndn(6) == 0) empty(&v, i);
        if (rndn(6) == 0) st(&v, 7, rval());
        ins_reg(&v, 0xD9, 0, i);
        run(&v);
    }
    static const char *CNAME[7] = {"fld1", "fldl2t", "fldl2e", "fldpi", "fldlg2", "fldln2", "fldz"};
    for (int k = 0; k < 7; k++) {
        rseed(CNAME[k]);
        for (int r = 0; r < 36; r++) {
            XV v; vbegin(&v, CNAME[k]);
            set_cw(&v, cw12(r));
            set_sw(&v, top_of(&v), 0);
            if (r >= 24) st(&v, 7, rval());
            put(&v, 0xD9); put(&v, (uint8_t)(0xE8 + k));
            run(&v);
        }
    }
}

/* stores to memory and to registers */
static void stores(void)
{
    struct { const char *name; uint8_t op; int reg, size, kind; } F[] = {
        {"fst m32fp", 0xD9, 2, 4, 0}, {"fstp m32fp", 0xD9, 3, 4, 0}, {"fst m64fp", 0xDD, 2, 8, 1},
        {"fstp m64fp", 0xDD, 3, 8, 1}, {"fstp m80fp", 0xDB, 7, 10, 2},
        {"fist m16int", 0xDF, 2, 2, 3}, {"fistp m16int", 0xDF, 3, 2, 3}, {"fist m32int", 0xDB, 2, 4, 3},
        {"fistp m32int", 0xDB, 3, 4, 3}, {"fistp m64int", 0xDF, 7, 8, 3}, {"fbstp m80bcd", 0xDF, 6, 10, 4},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        int n = F[k].kind == 2 ? 300 : F[k].kind == 4 ? 800 : 1200;
        for (int r = 0; r < n; r++) {
            XV v; vbegin(&v, F[k].name);
            set_cw(&v, cw12(r));
            set_sw(&v, top_of(&v), 0);
            uint32_t A = maddr(F[k].size);
            region(&v, A - 8, F[k].size + 16);
            f80 a;
            int sign = rndn(2);
            if (r < NEDGE * 4) a = EDGE[r / 4];
            else if (rndn(30) == 0) a = ODD[rndn(NODD)];
            else switch (F[k].kind) {
            case 0: a = mk(sign, rndn(3) ? 0x3F81 + (int)rndn(60) - 40 : rndn(2) ? 0x407E + (int)rndn(4) - 1 : 0x3FFF + (int)rndn(60) - 30, rsig()); break;
            case 1: a = mk(sign, rndn(3) ? 0x3C01 + (int)rndn(70) - 58 : rndn(2) ? 0x43FE + (int)rndn(4) - 1 : 0x3FFF + (int)rndn(200) - 100, rsig()); break;
            case 3: { int bits = F[k].size * 8;
                      int e = rndn(4) ? (int)rndn(bits + 2) : (int)rndn(bits + 2) - 4;
                      a = mk(sign, 0x3FFF + e - 1, rsig());
                      if (rndn(6) == 0) a = mk(sign, 0x3FFF + bits - 1, 0x8000000000000000ull | (rndn(2) ? rnd64() >> 40 : 0)); /* near -2^(n-1) */
                      break; }
            case 4: { int e = (int)rndn(62);
                      a = mk(sign, 0x3FFF + e - 1, rsig());
                      if (rndn(8) == 0) a = mk(sign, 0x3FFF + 59, 0xDE0B6B3A76400000ull - rndn(3)); /* near 10^18 */
                      break; }
            default: a = rval(); break;
            }
            st(&v, 0, a);
            maybe_empty(&v, 0);
            ins_mem(&v, 0, F[k].op, F[k].reg, A);
            run(&v);
        }
    }
    static const char *RNAME[2] = {"fst st(i)", "fstp st(i)"};
    for (int k = 0; k < 2; k++) {
        rseed(RNAME[k]);
        for (int r = 0; r < 200; r++) {
            XV v; vbegin(&v, RNAME[k]);
            set_sw(&v, top_of(&v), 0);
            int i = rndn(8);
            st(&v, 0, rndn(8) ? rval() : ODD[rndn(NODD)]);
            maybe_empty(&v, 0);
            if (rndn(8) == 0) empty(&v, 0);
            ins_reg(&v, 0xDD, 2 + k, i);
            run(&v);
        }
    }
}

/* register stack and control instructions */
static void control(void)
{
    struct { const char *name; uint8_t op, modrm; int byreg; } F[] = {
        {"fxch st(i)", 0xD9, 0xC8, 1}, {"ffree st(i)", 0xDD, 0xC0, 1}, {"ffreep st(i)", 0xDF, 0xC0, 1},
        {"fincstp", 0xD9, 0xF7, 0}, {"fdecstp", 0xD9, 0xF6, 0}, {"fnop", 0xD9, 0xD0, 0},
        {"fnclex", 0xDB, 0xE2, 0}, {"fninit", 0xDB, 0xE3, 0}, {"fnstsw ax", 0xDF, 0xE0, 0},
        {"fneni", 0xDB, 0xE0, 0}, {"fndisi", 0xDB, 0xE1, 0}, {"fnsetpm", 0xDB, 0xE4, 0},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        int nonwaiting = F[k].op == 0xDB && (F[k].modrm == 0xE2 || F[k].modrm == 0xE3) ? 1 : F[k].op == 0xDF && F[k].modrm == 0xE0;
        for (int r = 0; r < 120; r++) {
            XV v; vbegin(&v, F[k].name);
            set_sw(&v, top_of(&v), nonwaiting);
            int i = rndn(8);
            if (F[k].byreg) { st(&v, 0, rval()); st(&v, i, rval()); if (rndn(5) == 0) empty(&v, 0); if (rndn(5) == 0) empty(&v, i); }
            if (F[k].op == 0xDF && F[k].modrm == 0xE0) v.eax = rnd(); /* fnstsw ax keeps eax's upper half */
            put(&v, F[k].op); put(&v, (uint8_t)(F[k].modrm + (F[k].byreg ? i : 0)));
            run(&v);
        }
    }
    /* fcmovcc: eight conditions, flags walking over CF, ZF and PF */
    static const char *CC[8] = {"fcmovb", "fcmove", "fcmovbe", "fcmovu", "fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu"};
    for (int k = 0; k < 8; k++) {
        char name[64];
        snprintf(name, sizeof name, "%s st, st(i)", CC[k]);
        rseed(name);
        for (int r = 0; r < 64; r++) {
            XV v; vbegin(&v, name);
            int i = rndn(8);
            st(&v, i, rval()); st(&v, 0, rval());
            if (rndn(10) == 0) empty(&v, 0);
            if (rndn(10) == 0) empty(&v, i);
            v.fl = (v.fl & ~(F_CF | F_ZF | F_PF)) | (r & 1 ? F_CF : 0) | (r & 2 ? F_ZF : 0) | (r & 4 ? F_PF : 0);
            ins_reg(&v, k < 4 ? 0xDA : 0xDB, k & 3, i);
            run(&v);
        }
    }
    /* control and status words through memory */
    rseed("fldcw m2byte");
    for (int r = 0; r < 300; r++) {
        XV v; vbegin(&v, "fldcw m2byte");
        set_sw(&v, top_of(&v), 0);
        uint32_t A = maddr(2);
        uint16_t w = (uint16_t)rnd();
        if (rndn(2)) w = (uint16_t)((w & ~0x3F) | 0x3F); /* masked: the common case */
        wm(A, &w, 2);
        region(&v, A - 8, 18);
        ins_mem(&v, 0, 0xD9, 5, A);
        run(&v);
    }
    struct { const char *name; uint8_t op; int reg, p66, size, nonwaiting; } M[] = {
        {"fnstcw m2byte", 0xD9, 7, 0, 2, 1}, {"fnstsw m2byte", 0xDD, 7, 0, 2, 1},
        {"fnstenv m28byte", 0xD9, 6, 0, 28, 1}, {"fnstenv m14byte", 0xD9, 6, 1, 14, 1},
        {"fnsave m108byte", 0xDD, 6, 0, 108, 1}, {"fnsave m94byte", 0xDD, 6, 1, 94, 1},
        {"fldenv m28byte", 0xD9, 4, 0, 28, 0}, {"fldenv m14byte", 0xD9, 4, 1, 14, 0},
        {"frstor m108byte", 0xDD, 4, 0, 108, 0}, {"frstor m94byte", 0xDD, 4, 1, 94, 0},
    };
    for (unsigned k = 0; k < sizeof M / sizeof M[0]; k++) {
        rseed(M[k].name);
        for (int r = 0; r < 150; r++) {
            XV v; vbegin(&v, M[k].name);
            if (rndn(3) == 0) set_cw(&v, (uint16_t)(get_cw(&v) & ~rnd() & ~0x40) | 0x40);
            set_sw(&v, top_of(&v), M[k].nonwaiting);
            uint32_t A = maddr(M[k].size);
            region(&v, A - 8, M[k].size + 16);
            int env16 = M[k].p66, envsize = env16 ? 14 : 28;
            if (M[k].reg == 4) {
                /* an image to load: random words, consistent or not */
                uint8_t img[108];
                for (int b = 0; b < 108; b++) img[b] = (uint8_t)rnd();
                uint16_t cw = (uint16_t)(rndn(2) ? cw_random() : (rnd() | 0x3F));
                uint16_t sw = (uint16_t)rnd() & (uint16_t)~(SW_ES | SW_B);
                sw &= (uint16_t)~(0x3F & ~cw);   /* nothing pending and unmasked */
                if (rndn(2)) sw &= (uint16_t)~0x7F;
                uint16_t tw = (uint16_t)rnd();
                if (env16) { wr16(img, cw); wr16(img + 2, sw); wr16(img + 4, tw); }
                else { wr16(img, cw); wr16(img + 4, sw); wr16(img + 8, tw); }
                for (int i = 0; i < 8; i++) {
                    f80 f = rndn(10) ? rval() : ODD[rndn(NODD)];
                    memcpy(img + envsize + 10 * i, &f.sig, 8); wr16(img + envsize + 10 * i + 8, f.se);
                }
                wm(A, img, M[k].size);
            } else {
                for (int i = 0; i < 8; i++) if (rndn(2)) st(&v, i, rval());
                if (env16) { ignore(&v, A + 6, 8); }
                else { ignore(&v, A + 12, 16); }
            }
            ins_mem(&v, M[k].p66, M[k].op, M[k].reg, A);
            run(&v);
        }
    }
    rseed("fwait");
    for (int r = 0; r < 40; r++) {
        XV v; vbegin(&v, "fwait");
        set_sw(&v, top_of(&v), 0);
        put(&v, 0x9B);
        run(&v);
    }
}

/* transcendental instructions: compared within the book's error bound */
static void transcendental(void)
{
    struct { const char *name; uint8_t b; int two; } F[] = {
        {"fsin", 0xFE, 0}, {"fcos", 0xFF, 0}, {"fsincos", 0xFB, 0}, {"fptan", 0xF2, 0},
        {"fpatan", 0xF3, 1}, {"f2xm1", 0xF0, 0}, {"fyl2x", 0xF1, 1}, {"fyl2xp1", 0xF9, 1},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        for (int r = 0; r < 500; r++) {
            XV v; vbegin(&v, F[k].name);
            set_cw(&v, cw12(r));
            set_sw(&v, top_of(&v), 0);
            v.approx = 1;
            f80 a = rval(), b = rval();
            int sign = rndn(2);
            switch (F[k].b) {
            case 0xFE: case 0xFF: case 0xFB: case 0xF2: /* trigonometry: mostly |x| < 2^63, some beyond */
                if (rndn(3)) a = mk(sign, 0x3FFF + (int)rndn(70) - 60, rsig());
                else if (rndn(3)) a = mk(sign, 0x3FFF + (int)rndn(68), rsig());
                break;
            case 0xF3: /* fpatan: any quadrant, any ratio */
                if (rndn(2)) { a = mk(sign, 0x3FFF + (int)rndn(40) - 20, rsig()); b = mk(rndn(2), 0x3FFF + (int)rndn(40) - 20, rsig()); }
                break;
            case 0xF0: /* f2xm1: defined for -1 <= x <= 1 */
                a = rndn(8) ? mk(sign, 0x3FFE - (int)rndn(70), rsig()) : mk(sign, 0x3FFF, 0x8000000000000000ull);
                break;
            case 0xF1: /* fyl2x: x > 0 mostly */
                if (rndn(6)) a = mk(0, (a.se & 0x7FFF) ? a.se & 0x7FFF : 1, a.sig | 0x8000000000000000ull);
                if (rndn(4) == 0) a = mk(0, 0x3FFF - (int)rndn(2), rsig());  /* near 1 */
                break;
            case 0xF9: /* fyl2xp1: defined for |x| < 1 - sqrt(2)/2 */
                a = mk(sign, 0x3FFD - (int)rndn(70), rsig());
                break;
            }
            if (r < NEDGE) {
                f80 e = EDGE[r];
                int ee = e.se & 0x7FFF;
                int special = ee == 0 || ee == 0x7FFF;
                if (F[k].b == 0xF0 ? special || ee < 0x3FFF || (ee == 0x3FFF && e.sig == 0x8000000000000000ull)
                    : F[k].b == 0xF9 ? special || ee < 0x3FFD : 1) a = e;
            }
            st(&v, 1, b); st(&v, 0, a);
            if (rndn(40) == 0) empty(&v, 0);
            if (F[k].b == 0xFB || F[k].b == 0xF2) { if (rndn(10) == 0) st(&v, 7, rval()); else empty(&v, 7); }
            put(&v, 0xD9); put(&v, F[k].b);
            run(&v);
        }
    }
}

/* Unmasked exceptions: the instruction sets the flags and ES (the fault comes at the next
 * waiting instruction, which the vector does not execute), and what it does to the
 * destination depends on the exception.  Inputs never have an unmasked exception pending. */
static void unmasked(void)
{
    struct { const char *name; uint8_t op; int reg; int mem; int size; int kind; } F[] = {
        {"fadd st, st(i) [unmasked]", 0xD8, 0, 0, 0, 0}, {"fmul st, st(i) [unmasked]", 0xD8, 1, 0, 0, 0},
        {"fdiv st, st(i) [unmasked]", 0xD8, 6, 0, 0, 0}, {"fsubp st(i), st [unmasked]", 0xDE, 5, 0, 0, 0},
        {"fdiv m32fp [unmasked]", 0xD8, 6, 1, 4, 1}, {"fadd m64fp [unmasked]", 0xDC, 0, 1, 8, 2},
        {"fcom st(i) [unmasked]", 0xD8, 2, 0, 0, 0}, {"fcomip st, st(i) [unmasked]", 0xDF, 6, 0, 0, 0},
        {"fsqrt [unmasked]", 0xD9, -0x3A, 0, 0, 3}, {"frndint [unmasked]", 0xD9, -0x3C, 0, 0, 3},
        {"fscale [unmasked]", 0xD9, -0x3D, 0, 0, 4}, {"fprem [unmasked]", 0xD9, -0x38, 0, 0, 4},
        {"fxtract [unmasked]", 0xD9, -0x34, 0, 0, 3},
        {"fst m32fp [unmasked]", 0xD9, 2, 1, 4, 5}, {"fstp m64fp [unmasked]", 0xDD, 3, 1, 8, 5},
        {"fistp m32int [unmasked]", 0xDB, 3, 1, 4, 5}, {"fbstp m80bcd [unmasked]", 0xDF, 6, 1, 10, 5},
        {"fld m32fp [unmasked]", 0xD9, 0, 1, 4, 6}, {"fld st(i) [unmasked]", 0xD9, -1, 0, 0, 7},
        {"fxch st(i) [unmasked]", 0xD9, 1, 0, 0, 7},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        for (int r = 0; r < 300; r++) {
            XV v; vbegin(&v, F[k].name);
            uint16_t masks = 0x3F;
            for (int b = 0; b < 6; b++) if (rndn(3) == 0) masks &= (uint16_t)~(1 << b);
            set_cw(&v, (uint16_t)((cw12(r) & ~0x3F) | masks));
            set_sw(&v, top_of(&v), 0);
            int i = 1 + rndn(7);
            f80 a = rval(), b = rndn(2) ? related(a) : rval();
            if (rndn(6) == 0) { int e = rndn(2) ? 1 + (int)rndn(40) : 0x7FFE - (int)rndn(40); a = mk(rndn(2), e, rsig()); b = mk(rndn(2), rndn(2) ? 0x3FFF + (int)rndn(60) : 0x3FFF - (int)rndn(60), rsig()); }
            if (F[k].kind == 4) { st(&v, 1, b); st(&v, 0, a); maybe_empty(&v, 0); }
            else if (F[k].kind == 7) { st(&v, 0, a); st(&v, i, b); if (rndn(3) == 0) empty(&v, i); if (rndn(4) == 0) empty(&v, 0); if (rndn(4) == 0) st(&v, 7, rval()); }
            else { st(&v, i, b); st(&v, 0, a); maybe_empty(&v, 0); maybe_empty(&v, i); }
            if (F[k].mem) {
                uint32_t A = maddr(F[k].size);
                region(&v, A - 8, F[k].size + 16);
                if (F[k].kind == 1 || F[k].kind == 6) { uint32_t x = rf32(); wm(A, &x, 4); }
                else if (F[k].kind == 2) { uint64_t x = rf64(); wm(A, &x, 8); }
                else if (F[k].kind == 5 && rndn(2)) st(&v, 0, mk(rndn(2), rndn(2) ? 0x3F81 + (int)rndn(40) - 30 : 0x43FE + (int)rndn(8) - 2, rsig()));
                ins_mem(&v, 0, F[k].op, F[k].reg, A);
            } else if (F[k].reg < 0) {
                put(&v, F[k].op); put(&v, (uint8_t)(F[k].reg == -1 ? 0xC0 + i : 0xC0 - F[k].reg));
            } else {
                ins_reg(&v, F[k].op, F[k].reg, i);
            }
            run(&v);
        }
    }
}

/* The reserved precision-control setting (01): which precision does it give? */
static void reserved_precision(void)
{
    struct { const char *name; uint8_t op, modrm; int rm; } F[] = {
        {"fadd st, st(i) [pc 01]", 0xD8, 0xC0, 1}, {"fdiv st, st(i) [pc 01]", 0xD8, 0xF0, 1}, {"fsqrt [pc 01]", 0xD9, 0xFA, 0},
    };
    for (unsigned k = 0; k < sizeof F / sizeof F[0]; k++) {
        rseed(F[k].name);
        for (int r = 0; r < 200; r++) {
            XV v; vbegin(&v, F[k].name);
            set_cw(&v, cw_of(1, r % 4));
            set_sw(&v, top_of(&v), 0);
            int i = 1 + rndn(7);
            f80 a = rval(), b = rndn(2) ? related(a) : rval();
            st(&v, i, b); st(&v, 0, a);
            put(&v, F[k].op); put(&v, (uint8_t)(F[k].modrm + (F[k].rm ? i : 0)));
            run(&v);
        }
    }
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    char path[512];
    snprintf(path, sizeof path, "%s/x87.jsonl", dir);
    mem = mmap((void *)(uintptr_t)XMEM, XMEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    scratch = mmap((void *)(uintptr_t)SCRATCH, 0x1000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    code = mmap((void *)(uintptr_t)CODEPAGE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mem != (void *)(uintptr_t)XMEM || scratch != (void *)(uintptr_t)SCRATCH || code != (void *)(uintptr_t)CODEPAGE) {
        perror("gen_x87: mmap");
        return 1;
    }
    signal(SIGFPE, sigfpe);
    signal(SIGILL, sigfpe);
    signal(SIGSEGV, sigfpe);
    uint64_t fl;
    __asm__ volatile("pushfq; popq %0" : "=r"(fl));
    host_flags = (uint32_t)fl & ~(F_ARITH | 0x400u);

    out = fopen(path, "w");
    if (!out) { perror(path); return 1; }
    char date[40] = "unknown", model[128] = "unknown", vendor[64] = "unknown";
    time_t t = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) t = (time_t)strtoll(sde, NULL, 10);
    struct tm tm; gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[512];
        while (fgets(line, sizeof line, ci)) {
            char *c = strchr(line, ':');
            if (!c) continue;
            char *val = c + 2; val[strcspn(val, "\n")] = 0;
            for (char *p = val; *p; p++) if (*p == '"' || *p == '\\') *p = ' ';
            if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown")) snprintf(model, sizeof model, "%s", val);
            if (!strncmp(line, "vendor_id", 9) && !strcmp(vendor, "unknown")) snprintf(vendor, sizeof vendor, "%s", val);
        }
        fclose(ci);
    }
    fprintf(out, "{\"format\":\"lguest.ts-cpu-vectors/1+fpu\",\"cpu\":\"%s\",\"vendor\":\"%s\",\"generated\":\"%s\","
                 "\"mem_base\":%u,\"mem_size\":%u,\"group\":\"x87\","
                 "\"note\":\"Recorded natively in 64-bit user mode; see test/cpu/native/README.md, section x87. "
                 "Registers in fpu.st are in stack order (st(0) first) as sign-exponent (4 hex digits) then significand (16 hex digits).\"}\n",
            model, vendor, date, XMEM, XMEM_SIZE);

    /* memory around the operands: a short repeating pattern that any stray write would disturb */
    for (uint32_t i = 0; i < XMEM_SIZE; i++) pristine[i] = (uint8_t)(0xA5 ^ (i & 15) * 0x11);

    arith_reg();
    arith_mem();
    compares();
    unary();
    twoop();
    loads();
    stores();
    control();
    transcendental();
    unmasked();
    reserved_precision();
    fclose(out);
    fprintf(stderr, "x87      %7d vectors, %d forms; reserved env bits seen: cw/sw %08x tw %04x\n",
            total, nforms, reserved_seen[0], reserved_seen[1]);
    return 0;
}
