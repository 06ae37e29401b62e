/* Phase 1: CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320).
 * Three implementations over the same pseudo-random buffer: bytewise
 * table-driven, slice-by-4 (four tables, 32-bit loads) and bitwise.
 * They must agree; their results are folded into the digest. */
#include "rt.h"

#define CRC_BUF (256 * 1024)
#define POLY 0xEDB88320u

static u32 crc_tab[4][256];
static u32 crc_buf32[CRC_BUF / 4];
#define crc_buf ((u8 *)crc_buf32)

static NOINLINE void crc_make_tables(void)
{
	u32 i, k;
	for (i = 0; i < 256; i++) {
		u32 c = i;
		for (k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
		crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++) {
		u32 c = crc_tab[0][i];
		for (k = 1; k < 4; k++) {
			c = crc_tab[0][c & 0xff] ^ (c >> 8);
			crc_tab[k][i] = c;
		}
	}
}

static NOINLINE u32 crc_bytewise(u32 crc, const u8 *p, u32 n)
{
	crc = ~crc;
	while (n--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static NOINLINE u32 crc_slice4(u32 crc, const u8 *p, u32 n)
{
	crc = ~crc;
	/* byte steps until 4-aligned */
	while (n && ((u32)p & 3)) {
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
		n--;
	}
	while (n >= 4) {
		crc ^= *(const u32 *)p;
		crc = crc_tab[3][crc & 0xff] ^ crc_tab[2][(crc >> 8) & 0xff] ^
		      crc_tab[1][(crc >> 16) & 0xff] ^ crc_tab[0][crc >> 24];
		p += 4;
		n -= 4;
	}
	while (n--)
		crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static NOINLINE u32 crc_bitwise(u32 crc, const u8 *p, u32 n)
{
	u32 k;
	crc = ~crc;
	while (n--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (POLY & (0u - (crc & 1)));
	}
	return ~crc;
}

u32 phase_crc(u32 *fail)
{
	static const char check[] = "123456789";
	u32 h = 0x43524333u, s = 0x1234567u, i;

	crc_make_tables();
	for (i = 0; i < CRC_BUF / 4; i++)
		crc_buf32[i] = xs32(&s);

	/* Known-answer test. */
	if (crc_bytewise(0, (const u8 *)check, 9) != 0xCBF43926u ||
	    crc_slice4(0, (const u8 *)check, 9) != 0xCBF43926u ||
	    crc_bitwise(0, (const u8 *)check, 9) != 0xCBF43926u)
		*fail |= 1;

	/* Whole buffer, three ways. */
	{
		u32 a = crc_bytewise(0, crc_buf, CRC_BUF);
		u32 b = crc_slice4(0, crc_buf, CRC_BUF);
		u32 c = crc_bitwise(0, crc_buf, CRC_BUF / 4);
		u32 c2 = crc_bytewise(0, crc_buf, CRC_BUF / 4);
		if (a != b || c != c2)
			*fail |= 1;
		h = mix32(h, a);
		h = mix32(h, c);
	}

	/* Many windows at odd offsets/lengths; chain CRCs incrementally
	 * (crc(A||B) == crc(B, start=crc(A))). */
	for (i = 0; i < 96; i++) {
		u32 off = xs32(&s) & (CRC_BUF / 2 - 1);
		u32 len = (xs32(&s) & (CRC_BUF / 4 - 1)) + 1;
		u32 split = xs32(&s) % len;
		u32 whole = crc_slice4(0, crc_buf + off, len);
		u32 part = crc_bytewise(0, crc_buf + off, split);
		part = crc_bytewise(part, crc_buf + off + split, len - split);
		if (part != whole)
			*fail |= 1;
		h = mix32(h, whole ^ off);
		if ((i & 7) == 3) {
			u32 bl = len & 0x1fff;
			u32 bw = crc_bitwise(0, crc_buf + off, bl);
			if (bw != crc_slice4(0, crc_buf + off, bl))
				*fail |= 1;
			h = mix32(h, bw);
		}
	}
	return h;
}
