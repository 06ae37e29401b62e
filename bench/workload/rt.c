/* Minimal runtime: system calls, the mem* symbols the compiler may emit
 * calls to, and the 64-bit division helpers normally taken from libgcc
 * (we link with -nostdlib, so we provide integer-only versions here). */
#include "rt.h"

void sys_write(int fd, const void *buf, u32 len)
{
#ifdef __x86_64__
	/* Only for the optional x86-64 host cross-check build (README). */
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(1L), "D"((long)fd), "S"(buf), "d"((long)len)
			 : "rcx", "r11", "memory");
#else
	u32 ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "0"(4), "b"(fd), "c"(buf), "d"(len)
			 : "memory");
#endif
	(void)ret;
}

void sys_exit(int status)
{
	for (;;) {
#ifdef __x86_64__
		__asm__ volatile("syscall"
				 : : "a"(60L), "D"((long)status)
				 : "rcx", "r11", "memory");
#else
		__asm__ volatile("int $0x80" : : "a"(1), "b"(status) : "memory");
#endif
	}
}

/* ---- mem* (rep-string implementations; DF is 0 everywhere) ---- */

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep movsb"
			 : "+D"(d), "+S"(src), "+c"(n)
			 :
			 : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;
	__asm__ volatile("rep stosb"
			 : "+D"(d), "+c"(n)
			 : "a"(c)
			 : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	if ((u32)dst <= (u32)src || (u32)dst >= (u32)src + n)
		return memcpy(dst, src, n);
	if (n) {
		void *d = (u8 *)dst + n - 1;
		const void *s = (const u8 *)src + n - 1;
		__asm__ volatile("std\n\trep movsb\n\tcld"
				 : "+D"(d), "+S"(s), "+c"(n)
				 :
				 : "memory");
	}
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return (int)*p - (int)*q;
	return 0;
}

/* ---- 64-bit division helpers (integer instructions only) ---- */

/* (hi:lo) / d with hi < d, i.e. a single divl. */
static inline u32 div64_32(u32 hi, u32 lo, u32 d, u32 *rem)
{
	u32 q, r;
	__asm__("divl %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(d));
	*rem = r;
	return q;
}

static u64 udivmod64(u64 n, u64 d, u64 *rem)
{
	u32 nh = (u32)(n >> 32), nl = (u32)n;
	u32 dh = (u32)(d >> 32), dl = (u32)d;

	if (dh == 0) {
		/* Divisor fits in 32 bits: two chained divl. */
		u32 qh, ql, r;
		if (nh < dl) {
			qh = 0;
			r = nh;
		} else {
			qh = nh / dl;
			r = nh % dl;
		}
		ql = div64_32(r, nl, dl, &r);
		if (rem)
			*rem = r;
		return ((u64)qh << 32) | ql;
	}

	/* Divisor >= 2^32: quotient < 2^32.  Normalise the divisor, estimate
	 * the quotient with one divl, then correct by at most one. */
	{
		u32 s = (u32)__builtin_clz(dh);	/* 0..31 */
		u32 d1 = (u32)((d << s) >> 32);	/* top bit set */
		u64 n1 = n >> 1;		/* n1>>32 < 2^31 <= d1 */
		u32 junk;
		u32 q1 = div64_32((u32)(n1 >> 32), (u32)n1, d1, &junk);
		u64 q = (u64)(q1 >> (31 - s));
		u64 r;
		if (q != 0)
			q--;
		r = n - q * d;
		if (r >= d) {
			q++;
			r -= d;
		}
		if (rem)
			*rem = r;
		return q;
	}
}

u64 __udivmoddi4(u64 n, u64 d, u64 *rem)
{
	return udivmod64(n, d, rem);
}

u64 __udivdi3(u64 n, u64 d)
{
	return udivmod64(n, d, 0);
}

u64 __umoddi3(u64 n, u64 d)
{
	u64 r;
	udivmod64(n, d, &r);
	return r;
}

i64 __divdi3(i64 a, i64 b)
{
	u64 ua = a < 0 ? 0 - (u64)a : (u64)a;
	u64 ub = b < 0 ? 0 - (u64)b : (u64)b;
	u64 q = udivmod64(ua, ub, 0);
	return ((a < 0) != (b < 0)) ? (i64)(0 - q) : (i64)q;
}

i64 __moddi3(i64 a, i64 b)
{
	u64 ua = a < 0 ? 0 - (u64)a : (u64)a;
	u64 ub = b < 0 ? 0 - (u64)b : (u64)b;
	u64 r;
	udivmod64(ua, ub, &r);
	return a < 0 ? (i64)(0 - r) : (i64)r;
}

i64 __divmoddi4(i64 a, i64 b, i64 *rem)
{
	u64 ua = a < 0 ? 0 - (u64)a : (u64)a;
	u64 ub = b < 0 ? 0 - (u64)b : (u64)b;
	u64 r;
	u64 q = udivmod64(ua, ub, &r);
	if (rem)
		*rem = a < 0 ? (i64)(0 - r) : (i64)r;
	return ((a < 0) != (b < 0)) ? (i64)(0 - q) : (i64)q;
}
