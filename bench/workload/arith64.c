/* Phase 4: 64-bit integer arithmetic on a 32-bit CPU.
 *  - 64-bit LCG (64x64 multiply: mul/imul/add/adc);
 *  - Miller-Rabin on 32-bit numbers: (u64)a*b % m (mul + divl helper);
 *  - 64-bit modular multiply by shift-and-add, modular exponentiation
 *    (Fermat test) on ~62-bit numbers: shld/shrd/add/adc/cmp/sbb;
 *  - Fibonacci mod m, iterative and by fast doubling, cross-checked;
 *  - 64/64 division and modulo (unsigned and signed), checked by
 *    multiplying back; 64-bit Euclid gcd;
 *  - variable 64-bit shifts and signed 32x32->64 multiplies. */
#include "rt.h"

static u64 lcg64(u64 *st)
{
	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	return *st;
}

/* ---- 32-bit modulus via 64-bit product ---- */

static u32 mulmod32(u32 a, u32 b, u32 m)
{
	return (u32)(((u64)a * b) % m);
}

static u32 powmod32(u32 b, u32 e, u32 m)
{
	u32 r = 1 % m;
	b %= m;
	while (e) {
		if (e & 1)
			r = mulmod32(r, b, m);
		b = mulmod32(b, b, m);
		e >>= 1;
	}
	return r;
}

static int mr_witness(u32 n, u32 a, u32 d, u32 s)
{
	u32 x = powmod32(a, d, n), i;
	if (x == 1 || x == n - 1)
		return 0;
	for (i = 1; i < s; i++) {
		x = mulmod32(x, x, n);
		if (x == n - 1)
			return 0;
	}
	return 1; /* composite */
}

/* Deterministic for n < 2^32 with bases 2, 7, 61. */
static NOINLINE int is_prime32(u32 n)
{
	u32 d, s;
	if (n < 2)
		return 0;
	if (n < 4)
		return 1;
	if (!(n & 1))
		return 0;
	if (n % 3 == 0)
		return n == 3;
	d = n - 1;
	s = (u32)__builtin_ctz(d);
	d >>= s;
	if (n != 7 && mr_witness(n, 2, d, s)) return 0;
	if (n != 7 && mr_witness(n, 7, d, s)) return 0;
	if (n != 61 && mr_witness(n, 61, d, s)) return 0;
	return 1;
}

/* ---- 64-bit modulus by shift-and-add (m < 2^63) ---- */

static NOINLINE u64 mulmod64(u64 a, u64 b, u64 m)
{
	u64 r = 0;
	if (a >= m)
		a %= m;
	while (b) {
		if (b & 1) {
			r += a;
			if (r >= m)
				r -= m;
		}
		a <<= 1;
		if (a >= m)
			a -= m;
		b >>= 1;
	}
	return r;
}

static u64 powmod64(u64 b, u64 e, u64 m)
{
	u64 r = 1;
	b %= m;
	while (e) {
		if (e & 1)
			r = mulmod64(r, b, m);
		b = mulmod64(b, b, m);
		e >>= 1;
	}
	return r;
}

/* ---- Fibonacci mod m ---- */

static NOINLINE u64 fib_iter(u32 n, u64 m)
{
	u64 a = 0, b = 1;
	while (n--) {
		u64 t = a + b;
		if (t >= m)
			t -= m;
		a = b;
		b = t;
	}
	return a;
}

/* Fast doubling: F(2k) = F(k)(2F(k+1) - F(k)), F(2k+1) = F(k)^2 + F(k+1)^2 */
static NOINLINE u64 fib_doubling(u32 n, u64 m)
{
	u64 a = 0, b = 1; /* F(k), F(k+1) */
	int bit;
	for (bit = 31 - __builtin_clz(n | 1); bit >= 0; bit--) {
		u64 t2 = (2 * b) % m;
		u64 c = mulmod64(a, (t2 + m - a) % m, m);
		u64 d = (mulmod64(a, a, m) + mulmod64(b, b, m)) % m;
		if ((n >> bit) & 1) {
			a = d;
			b = (c + d) % m;
		} else {
			a = c;
			b = d;
		}
	}
	return a;
}

static u64 gcd64(u64 a, u64 b)
{
	while (b) {
		u64 t = a % b;
		a = b;
		b = t;
	}
	return a;
}

u32 phase_arith64(u32 *fail)
{
	u32 h = 0x41363421u, i;
	u64 st = 0x0123456789ABCDEFull, acc = 0;

	/* LCG + mixed 64-bit ops */
	for (i = 0; i < 200000; i++) {
		u64 x = lcg64(&st);
		u64 y = lcg64(&st);
		acc += (x >> 17) ^ (y << 11);
		acc ^= x * (y | 1);
		acc -= (u64)((i64)(i32)(u32)x * (i64)(i32)(u32)(y >> 32));
	}
	h = mix32(h, (u32)acc);
	h = mix32(h, (u32)(acc >> 32));

	/* variable shifts */
	acc = 0;
	for (i = 0; i < 20000; i++) {
		u64 x = lcg64(&st);
		u32 k = (u32)(x >> 58);
		i64 sx = (i64)x;
		acc += (x << k) ^ (x >> (63 - k)) ^ (u64)(sx >> k);
		acc = (acc << 7) | (acc >> 57);
	}
	h = mix32(h, (u32)acc ^ (u32)(acc >> 32));

	/* primes among 32-bit candidates */
	{
		u32 cnt = 0, s = 0xFACEu;
		static const u32 known[] = { 4294967291u, 2147483647u, 3215031751u,
					     4294967279u, 561u, 1000000007u };
		static const u8 known_p[] = { 1, 1, 0, 1, 0, 1 };
		for (i = 0; i < 6; i++)
			if (is_prime32(known[i]) != known_p[i])
				*fail |= 8;
		for (i = 0; i < 12000; i++) {
			u32 n = xs32(&s) | 0x80000001u;
			if (is_prime32(n)) {
				cnt++;
				h = mix32(h, n);
			}
		}
		h = mix32(h, cnt);
	}

	/* Fermat test on 62-bit odd numbers with 64-bit shift-add mulmod */
	{
		u32 cnt = 0;
		const u64 p61 = (1ull << 61) - 1; /* Mersenne prime */
		if (powmod64(3, p61 - 1, p61) != 1)
			*fail |= 8;
		for (i = 0; i < 40; i++) {
			u64 n = (lcg64(&st) >> 2) | 1 | (1ull << 61);
			if (powmod64(2, n - 1, n) == 1) {
				cnt++;
				h = mix32(h, (u32)n);
			}
			h = mix32(h, (u32)powmod64(lcg64(&st), 65537, n));
		}
		h = mix32(h, cnt);
	}

	/* Fibonacci mod m */
	{
		const u64 m = 4611686018427387847ull; /* just below 2^62 */
		u32 n;
		for (n = 50000; n <= 290000; n += 80000) {
			u64 a = fib_iter(n, m);
			u64 b = fib_doubling(n, m);
			if (a != b)
				*fail |= 8;
			h = mix32(h, (u32)a ^ (u32)(a >> 32));
		}
		/* F(90) = 2880067194370816120 < m exactly */
		if (fib_doubling(90, m) != 2880067194370816120ull)
			*fail |= 8;
	}

	/* 64-bit division, unsigned and signed, and gcd */
	{
		u64 qs = 0;
		for (i = 0; i < 20000; i++) {
			u64 n = lcg64(&st);
			u64 d = lcg64(&st) >> (lcg64(&st) >> 58);
			u64 q, r;
			i64 sn, sd, sq, sr;
			if (!d)
				d = 1;
			q = n / d;
			r = n % d;
			if (r >= d || q * d + r != n)
				*fail |= 8;
			qs += q ^ r;
			sn = (i64)n;
			sd = (i64)(d ^ (lcg64(&st) & 0x8000000000000000ull));
			if (!sd)
				sd = 3;
			sq = sn / sd;
			sr = sn % sd;
			if (sq * sd + sr != sn)
				*fail |= 8;
			qs += (u64)sq - (u64)sr;
			if ((i & 63) == 0)
				qs += gcd64(n, d);
		}
		h = mix32(h, (u32)qs);
		h = mix32(h, (u32)(qs >> 32));
		if (gcd64(1071ull * 0x100000007ull, 462ull * 0x100000007ull) != 21ull * 0x100000007ull)
			*fail |= 8;
	}
	return h;
}
