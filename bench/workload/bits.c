/* Phase 6: everything else.
 *  - bit scans (bsf/bsr via __builtin_ctz/clz), parity (PF via setnp),
 *    bswap, rotates, hand-written popcount and bit reversal, x & -x;
 *  - a bitmap sieve using bts/bt on a memory bit string with large bit
 *    offsets (inline asm) and bt on registers;
 *  - byte and word arithmetic: u8/u16 read-modify-write on memory
 *    (addb/addw/xorb), i8/i16 loads (movsx), u8/u16 loads (movzx),
 *    16-bit byte swaps, saturating byte adds with cmov;
 *  - setcc and cmov from comparisons, imul (2- and 3-operand),
 *    signed/unsigned 32-bit div and idiv, division by constants,
 *    decimal conversion. */
#include "rt.h"

#define SIEVE_BITS (1u << 19)

static u32 bitmap[SIEVE_BITS / 32];
static u8 pix_a[16384];
static u8 pix_b[16384];
static i16 samp[8192];
static u16 hist16[256];
static u8 hist8[256];

static inline void bts_mem(u32 *base, u32 bit)
{
	__asm__ volatile("btsl %1, %0" : "+m"(*base) : "r"(bit) : "memory", "cc");
}

static inline int bt_mem(const u32 *base, u32 bit)
{
	u8 c;
	__asm__ volatile("btl %2, %1\n\tsetc %0"
			 : "=q"(c)
			 : "m"(*base), "r"(bit)
			 : "memory", "cc");
	return c;
}

static inline int btr_mem(u32 *base, u32 bit)
{
	u8 c;
	__asm__ volatile("btrl %2, %1\n\tsetc %0"
			 : "=q"(c), "+m"(*base)
			 : "r"(bit)
			 : "memory", "cc");
	return c;
}

static inline int btc_mem(u32 *base, u32 bit)
{
	u8 c;
	__asm__ volatile("btcl %2, %1\n\tsetc %0"
			 : "=q"(c), "+m"(*base)
			 : "r"(bit)
			 : "memory", "cc");
	return c;
}

static u32 popcount_kern(u32 x)
{
	u32 n = 0;
	while (x) {
		x &= x - 1;
		n++;
	}
	return n;
}

static u32 popcount_swar(u32 x)
{
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0F0F0F0Fu;
	return (x * 0x01010101u) >> 24;
}

static u32 bitrev32(u32 x)
{
	x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
	x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
	x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
	return __builtin_bswap32(x);
}

static NOINLINE u32 bit_kernel(u32 *fail)
{
	u32 s = 0x9E3779B9u, h = 0, i;
	for (i = 0; i < 150000; i++) {
		u32 x = xs32(&s);
		u32 tz = (u32)__builtin_ctz(x | 0x80000000u);
		u32 lz = (u32)__builtin_clz(x | 1u);
		u32 pk = popcount_kern(x);
		u32 ps = popcount_swar(x);
		u32 par = (u32)__builtin_parity(x);
		u32 low = x & (0u - x);
		u32 y;
		if (pk != ps || par != (pk & 1))
			*fail |= 32;
		if (x && low != (1u << tz))
			*fail |= 32;
		y = bitrev32(x);
		if ((u32)__builtin_clz(y | 1u) != ((x & 1) ? 0 : (x ? tz : 31)))
			*fail |= 32;
		h += tz * 33 + lz * 7 + pk;
		h ^= rotl32(x, h) ^ (y >> (lz & 7));
		h += par << 9;
		if ((x >> (h & 31)) & 1) /* bt reg, reg */
			h ^= 0x5bd1e995u;
	}
	return h;
}

static NOINLINE u32 bitmap_sieve(u32 *fail)
{
	u32 i, j, cnt = 0, h = 0;
	/* bit set = composite; bits 0,1 marked too */
	bts_mem(bitmap, 0);
	bts_mem(bitmap, 1);
	for (i = 2; i * i < SIEVE_BITS; i++)
		if (!bt_mem(bitmap, i))
			for (j = i * i; j < SIEVE_BITS; j += i)
				bts_mem(bitmap, j);
	for (i = 0; i < SIEVE_BITS; i++)
		if (!bt_mem(bitmap, i)) {
			cnt++;
			h = h * 31 + i;
		}
	if (cnt != 43390) /* pi(2^19) */
		*fail |= 32;
	/* complement and reset a few words' worth of bits */
	for (i = 0; i < 4096; i++)
		h += (u32)btc_mem(bitmap, i * 97) + 2u * (u32)btr_mem(bitmap, i * 61 + 5);
	return h ^ cnt;
}

/* RFC 1071 style ones'-complement sum with 16-bit add/adc on memory
 * words, plus a byte sum with carry chained from %bl into %bh.  Written in
 * assembly so that 8-bit high registers and 0x66-prefixed arithmetic are
 * certain to appear.  Returns (swapped ones'-complement sum) |
 * (swapped byte sums << 16).  nwords must be > 0. */
static u32 ipsum_asm(const void *p, u32 nwords)
{
	u32 sum = 0, bytes = 0;
	__asm__ volatile("1:\n\t"
			 "movw (%2), %%dx\n\t"
			 "addw %%dx, %w0\n\t"
			 "adcw $0, %w0\n\t"
			 "addb %%dl, %b1\n\t"
			 "adcb %%dh, %h1\n\t"
			 "add $2, %2\n\t"
			 "decl %3\n\t"
			 "jnz 1b\n\t"
			 "rolw $8, %w0\n\t"
			 "xchgb %b1, %h1"
			 : "+a"(sum), "+b"(bytes), "+S"(p), "+c"(nwords)
			 :
			 : "edx", "cc", "memory");
	return (sum & 0xffff) | (bytes << 16);
}

static u32 ipsum_c(const u8 *p, u32 nwords)
{
	u32 s = 0, lo = 0, hi = 0, i;
	for (i = 0; i < nwords; i++) {
		s += (u32)p[2 * i] | ((u32)p[2 * i + 1] << 8);
		s = (s & 0xffff) + (s >> 16);
		lo += p[2 * i];
		hi += p[2 * i + 1] + (lo >> 8);
		lo &= 0xff;
		hi &= 0xff;
	}
	s = ((s & 0xff) << 8) | (s >> 8);
	return s | (lo << 24) | (hi << 16);
}

static NOINLINE u32 byte_word_kernel(u32 *fail)
{
	u32 s = 0x12345u, i, round, h = 0;
	u16 acc16 = 0;
	for (i = 0; i < 16384; i++) {
		u32 r = xs32(&s);
		pix_a[i] = (u8)r;
		pix_b[i] = (u8)(r >> 8);
		if (i < 8192)
			samp[i] = (i16)(r >> 16);
	}
	for (round = 0; round < 20; round++) {
		u32 sat = 0;
		for (i = 0; i < 16384; i++) {
			u32 v = (u32)pix_a[i] + pix_b[i];
			u8 o = v > 255 ? 255 : (u8)v; /* cmov */
			sat += v > 255;		/* setcc */
			pix_b[i] ^= (u8)(o >> 1);	/* xorb to memory */
			hist16[o]++;			/* addw to memory */
			hist8[pix_a[i] ^ (u8)round] += 3; /* addb to memory */
		}
		for (i = 0; i < 8192; i++) {
			i32 v = samp[i];		/* movswl */
			i32 w = (i8)pix_a[i];		/* movsbl */
			v = v * 3 + w * 5;
			v = v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
			samp[i] = (i16)v;
			acc16 = (u16)(acc16 + (u16)v);
			acc16 = (u16)((acc16 << 8) | (acc16 >> 8));
		}
		h = mix32(h, sat);
		h = mix32(h, acc16);
		{
			u32 ia = ipsum_asm(pix_b, 8192);
			if (ia != ipsum_c(pix_b, 8192))
				*fail |= 32;
			h = mix32(h, ia);
		}
	}
	for (i = 0; i < 256; i++)
		h = mix32(h, ((u32)hist16[i] << 8) | hist8[i]);
	{
		u32 t = 0;
		for (i = 0; i < 256; i++)
			t += hist16[i];
		if ((u16)t != (u16)(20u * 16384u))
			*fail |= 32;
	}
	return h;
}

static u32 utoa10(u32 v, char *out)
{
	char tmp[12];
	u32 n = 0, i;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

static NOINLINE u32 arith_kernel(u32 *fail)
{
	u32 s = 0x600DF00Du, i, h = 0, lt = 0;
	i32 mx = -2147483647 - 1, mn = 2147483647;
	char buf[12];
	for (i = 0; i < 60000; i++) {
		u32 x = xs32(&s), y = xs32(&s);
		i32 a = (i32)x, b = (i32)(y | 1);
		i32 q = a / b, r = a % b;	/* cltd; idivl */
		u32 uq = x / (y | 1), ur = x % (y | 1); /* divl */
		if (q * b + r != a || uq * (y | 1) + ur != x)
			*fail |= 32;
		mx = a > mx ? a : mx;		/* cmov */
		mn = a < mn ? a : mn;
		lt += (a < b) + ((x < y) << 1) + ((x == y) << 2);
		h += (u32)(a * 0x45d9f3b) + (u32)(a * b);
		h ^= x / 10 + x % 7 + (u32)(a / 3) + (u32)(a % 5);
		h += (u32)(q ^ r) + uq + ur;
		if ((i & 15) == 0) {
			u32 n = utoa10(x, buf), k, dsum = 0;
			for (k = 0; k < n; k++)
				dsum += (u32)(buf[k] - '0');
			h += dsum * n;
		}
	}
	return h ^ lt ^ (u32)mx ^ ((u32)mn << 1);
}

u32 phase_bits(u32 *fail)
{
	u32 h = 0x42495453u;
	h = mix32(h, bit_kernel(fail));
	h = mix32(h, bitmap_sieve(fail));
	h = mix32(h, byte_word_kernel(fail));
	h = mix32(h, arith_kernel(fail));
	return h;
}
