/* p6 group: two P6 instructions a 64-bit processor cannot run natively.
 *   arpl r/m16, r16 (63 /r): in 64-bit mode this byte is movsxd.
 *   salc (D6): invalid in 64-bit mode; undocumented, every IA-32 processor runs it.
 * Each result is checked against a model written from the SDM (arpl's
 * pseudocode; salc: AL = CF ? FF : 00, no flag changes). */
#include "core.h"
#include <stdio.h>

static void arpl_model(const char *name, uint32_t dst, uint32_t src, uint32_t fl, uint32_t out_dst, uint32_t out_fl)
{
    int adjust = (dst & 3) < (src & 3);
    uint32_t want = adjust ? (dst & ~3u) | (src & 3) : dst;
    uint32_t want_fl = (fl & ~F_ZF) | (adjust ? F_ZF : 0);
    if ((out_dst & 0xFFFF) != (want & 0xFFFF) || (out_fl & F_REC) != (want_fl & F_REC)) {
        if (model_mismatch++ < 20)
            fprintf(stderr, "model: %s dst %04x src %04x fl %03x: qemu %04x fl %03x, SDM %04x fl %03x\n",
                    name, dst & 0xFFFF, src & 0xFFFF, fl, out_dst & 0xFFFF, out_fl, want & 0xFFFF, want_fl);
    }
}

static void arpl(int mem, int p66)
{
    char name[64];
    snprintf(name, sizeof name, "%sarpl %s, r16", p66 ? "66 " : "", mem ? "m16" : "r/m16");
    rseed(name);
    for (int i = 0; i < 64; i++) {
        V v; vbegin(&v, name);
        uint32_t dst = rnd(), src = rnd();
        if (i < 16) { dst = (dst & ~3u) | (uint32_t)(i >> 2); src = (src & ~3u) | (uint32_t)(i & 3); }  /* every RPL pair */
        if (p66) put(&v, 0x66);
        put(&v, 0x63);
        int reg = pick_op(&v, 16);
        setr(&v, reg, 16, src);
        if (mem) {
            uint32_t A = rand_addr();
            wmem(A, dst, 2);
            region(&v, (A - 8) & ~7u, 32);
            modrm_mem32(&v, reg, A);
            /* arpl writes its destination: through a CS override that is a #GP(0)
             * on a real CPU (a code segment is not writable), which QEMU does not
             * check; use DS instead */
            if (v.c[0] == 0x2E) v.c[0] = 0x3E;
            run(&v);
            /* the model checks the flags here; the memory result is in the vector, and the replay compares it */
            uint32_t adjusted = (dst & 3) < (src & 3) ? (dst & ~3u) | (src & 3) : dst;
            arpl_model(name, dst, src, v.fl, adjusted, last_fl);
            continue;
        }
        int rm = pick_op(&v, 16);
        if (rm == reg) src = dst;
        setr(&v, rm, 16, dst);
        modrm_reg(&v, reg, rm);
        run(&v);
        if ((last_r[rm] >> 16) != (v.r[rm] >> 16) && model_mismatch++ < 20)
            fprintf(stderr, "model: %s changed the upper half of the destination\n", name);
        arpl_model(name, dst, rm == reg ? dst : src, v.fl, last_r[rm], last_fl);
    }
}

static void salc(void)
{
    const char *name = "salc";
    rseed(name);
    for (int i = 0; i < 32; i++) {
        V v; vbegin(&v, name);
        if (i < 2) v.fl = (v.fl & ~F_CF) | (i ? F_CF : 0);
        put(&v, 0xD6);
        run(&v);
        uint32_t want = (v.r[EAX] & ~0xFFu) | ((v.fl & F_CF) ? 0xFFu : 0);
        if ((last_r[EAX] != want || (last_fl & F_REC) != (v.fl & F_REC)) && model_mismatch++ < 20)
            fprintf(stderr, "model: salc eax %08x fl %03x: qemu %08x fl %03x\n", v.r[EAX], v.fl, last_r[EAX], last_fl);
    }
}

void gen_p6(void)
{
    for (int p66 = 0; p66 < 2; p66++)
        for (int mem = 0; mem < 2; mem++) arpl(mem, p66);
    salc();
}
