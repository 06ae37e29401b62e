/* hint group: the P6's hint-NOP row, 0F 18 to 0F 1F with every ModRM reg
 * field, register and memory forms, with no prefix and with 66, F2 and F3
 * (under which later processors named some of them: SSE's prefetches, MPX,
 * cldemote, CET's endbr32/endbr64/rdsspd); and endbr32/endbr64 themselves.
 * Every memory operand points at an address that is NOT mapped in this
 * process (0x70000000 and up): a hint NOP that touched its operand would
 * fault, and the generator counts any signal as unexpected.  So each vector
 * shows that the instruction changed nothing but EIP. */
#include "core.h"
#include <stdio.h>

static const uint8_t PREFIX[4] = {0, 0x66, 0xF2, 0xF3};
static const char *PNAME[4] = {"", "66 ", "F2 ", "F3 "};

static void hint(int op, int regf, int mem, int p)
{
    char name[96];
    snprintf(name, sizeof name, "hint nop %s0F %02X /%d (%s)", PNAME[p], op, regf,
             mem ? "memory, not touched" : "register");
    rseed(name);
    for (int i = 0; i < 2; i++) {
        V v; vbegin(&v, name);
        if (PREFIX[p]) put(&v, PREFIX[p]);
        put(&v, 0x0F); put(&v, (uint8_t)op);
        if (mem) modrm_mem(&v, regf, 0x70000000u + (rnd() & 0x0FFFFFF0u));
        else modrm_reg(&v, regf, pick_op(&v, 32));
        run(&v);
    }
}

static void cet(const char *name, uint8_t modrm)
{
    rseed(name);
    for (int i = 0; i < 8; i++) {
        V v; vbegin(&v, name);
        put(&v, 0xF3); put(&v, 0x0F); put(&v, 0x1E); put(&v, modrm);
        run(&v);
    }
}

void gen_hint(void)
{
    for (int op = 0x18; op <= 0x1F; op++)
        for (int p = 0; p < 4; p++)
            for (int regf = 0; regf < 8; regf++)
                for (int mem = 0; mem < 2; mem++) hint(op, regf, mem, p);
    cet("endbr32 (F3 0F 1E FB)", 0xFB);
    cet("endbr64 (F3 0F 1E FA)", 0xFA);
}
