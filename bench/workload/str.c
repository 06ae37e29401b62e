/* Phase 3: string instructions.
 * memcpy/memset/memcmp/strlen/memchr/memmove built directly on
 * rep movsb, rep movsd (+ rep movsb tail), rep stosd (+ rep stosb tail),
 * repe cmpsb, repne scasb and std/rep movsb/cld, exercised on many
 * lengths (0 .. 4 KiB) and alignments, with results cross-checked. */
#include "rt.h"

#define AREA (64 * 1024)

static u8 src_area[AREA];
static u8 dst_area[AREA];

static inline void copy_movsb(void *d, const void *s, u32 n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static inline void copy_movsd(void *d, const void *s, u32 n)
{
	u32 nd = n >> 2;
	__asm__ volatile("rep movsl\n\t"
			 "movl %3, %%ecx\n\t"
			 "rep movsb"
			 : "+D"(d), "+S"(s), "+c"(nd)
			 : "r"(n & 3)
			 : "memory");
}

static inline void set_stosd(void *d, u8 v, u32 n)
{
	u32 nd = n >> 2;
	u32 pat = v * 0x01010101u;
	__asm__ volatile("rep stosl\n\t"
			 "movl %3, %%ecx\n\t"
			 "rep stosb"
			 : "+D"(d), "+c"(nd), "+a"(pat)
			 : "r"(n & 3)
			 : "memory");
}

/* Backward copy with DF=1 (memmove for dst > src overlap). */
static inline void move_back(void *d, const void *s, u32 n)
{
	if (!n)
		return;
	d = (u8 *)d + n - 1;
	s = (const u8 *)s + n - 1;
	__asm__ volatile("std\n\t"
			 "rep movsb\n\t"
			 "cld"
			 : "+D"(d), "+S"(s), "+c"(n)
			 :
			 : "memory");
}

/* Returns <0, 0, >0 like memcmp. */
static inline int cmp_cmpsb(const void *a, const void *b, u32 n)
{
	int r;
	u32 junk;
	__asm__ volatile("xorl %%eax, %%eax\n\t" /* ZF=1 for n == 0 */
			 "repe cmpsb\n\t"
			 "je 1f\n\t"
			 "movzbl -1(%1), %%eax\n\t"
			 "movzbl -1(%2), %%edx\n\t"
			 "subl %%edx, %%eax\n"
			 "1:"
			 : "=&a"(r), "+S"(a), "+D"(b), "+c"(n), "=&d"(junk)
			 :
			 : "memory", "cc");
	return r;
}

static inline u32 len_scasb(const char *s)
{
	u32 n = 0xffffffffu;
	__asm__ volatile("repne scasb"
			 : "+D"(s), "+c"(n)
			 : "a"(0)
			 : "memory", "cc");
	return ~n - 1;
}

/* Index of the first byte == c in p[0..n), or n. */
static inline u32 chr_scasb(const void *p, u8 c, u32 n)
{
	u32 left = n;
	const void *q = p;
	if (!n)
		return 0;
	__asm__ volatile("repne scasb\n\t"
			 "jne 1f\n\t"
			 "incl %%ecx\n"
			 "1:"
			 : "+D"(q), "+c"(left)
			 : "a"((u32)c)
			 : "memory", "cc");
	return n - left;
}

static u32 hash_words(const u8 *p, u32 n)
{
	const u32 *w = (const u32 *)p;
	u32 h = 0x811C9DC5u, i;
	for (i = 0; i < n / 4; i++)
		h = (h ^ w[i]) * 0x01000193u;
	return h;
}

u32 phase_string(u32 *fail)
{
	u32 h = 0x53545247u, s = 0xBADC0DEu, it;

	for (it = 0; it < AREA; it++)
		src_area[it] = (u8)(xs32(&s) | 1); /* no zero bytes */

	for (it = 0; it < 24000; it++) {
		u32 r = xs32(&s);
		u32 len = (r & 0x10) ? (r >> 20) & 0xfff : (r >> 20) & 0x3f;
		u32 so = xs32(&s) & (AREA / 2 - 1);
		u32 dof = xs32(&s) & (AREA / 2 - 1);
		u8 *d = dst_area + dof;
		const u8 *sp = src_area + so;
		int c;

		switch (r & 7) {
		case 0:
		case 1:
			copy_movsb(d, sp, len);
			break;
		case 2:
		case 3:
			copy_movsd(d, sp, len);
			break;
		case 4: {
			u32 k;
			set_stosd(d, (u8)(r >> 8), len);
			/* the filled region must contain only the fill byte */
			k = chr_scasb(d, (u8)((r >> 8) + 1), len);
			if (k != len)
				*fail |= 4;
			h = mix32(h, k);
			continue;
		}
		case 5:
			/* overlapping move inside dst_area, forward or backward */
			copy_movsd(d, sp, len);
			if (dof + 40 + len <= AREA) {
				move_back(d + 37, d, len);
				if (cmp_cmpsb(d + 37, sp, len) != 0)
					*fail |= 4;
				h = mix32(h, len);
			}
			continue;
		case 6: {
			/* strlen: terminate a copied run at a chosen position */
			u32 k;
			copy_movsb(d, sp, len + 1);
			d[len] = 0;
			k = len_scasb((const char *)d);
			if (k != len)
				*fail |= 4;
			h = mix32(h, k);
			continue;
		}
		default: {
			/* memchr on source data for a byte value */
			u32 k = chr_scasb(sp, (u8)(r >> 8) | 1, len);
			if (k < len && sp[k] != ((u8)(r >> 8) | 1))
				*fail |= 4;
			h = mix32(h, k);
			continue;
		}
		}

		/* after a copy: compare equal, then plant a difference */
		c = cmp_cmpsb(d, sp, len);
		if (c != 0)
			*fail |= 4;
		if (len) {
			u32 pos = (r >> 8) % len;
			u8 old = d[pos];
			d[pos] = (u8)(old + 1 + ((r >> 3) & 1) * 253);
			c = cmp_cmpsb(d, sp, len);
			if (c == 0 || (c < 0) != (d[pos] < old))
				*fail |= 4;
			h = mix32(h, (u32)c + pos);
		}
	}
	h = mix32(h, hash_words(dst_area, AREA));
	return h;
}
