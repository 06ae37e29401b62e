/* Phase 2: sorting.
 *  - quicksort on int32 (median-of-three, Hoare partition, insertion sort
 *    for short ranges, recursion on the smaller side only);
 *  - heap sort on uint32;
 *  - a generic qsort-like sort (element size + comparator function
 *    pointer, so every comparison is an indirect call) on 8-byte records
 *    and on int32 with a descending comparator.
 * Results are checked for order and for preserved content. */
#include "rt.h"

#define NSORT 12000

static i32 arr_i[NSORT];
static u32 arr_u[NSORT];

struct rec {
	u32 key;
	u16 tag;
	u8 x;
	i8 y;
};
static struct rec arr_r[NSORT];
static i32 arr_g[NSORT];

/* ---- quicksort ---- */

static void isort_i32(i32 *a, i32 n)
{
	i32 i, j;
	for (i = 1; i < n; i++) {
		i32 v = a[i];
		for (j = i; j > 0 && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

static NOINLINE void qsort_i32(i32 *a, i32 n)
{
	while (n > 16) {
		i32 mid = n >> 1, i = -1, j = n, p, t;
		/* median of three into a[mid] */
		if (a[mid] < a[0]) { t = a[mid]; a[mid] = a[0]; a[0] = t; }
		if (a[n - 1] < a[0]) { t = a[n - 1]; a[n - 1] = a[0]; a[0] = t; }
		if (a[n - 1] < a[mid]) { t = a[n - 1]; a[n - 1] = a[mid]; a[mid] = t; }
		p = a[mid];
		for (;;) {
			do i++; while (a[i] < p);
			do j--; while (a[j] > p);
			if (i >= j)
				break;
			t = a[i]; a[i] = a[j]; a[j] = t;
		}
		/* [0, j] and [j+1, n) */
		if (j + 1 < n - (j + 1)) {
			qsort_i32(a, j + 1);
			a += j + 1;
			n -= j + 1;
		} else {
			qsort_i32(a + j + 1, n - (j + 1));
			n = j + 1;
		}
	}
	isort_i32(a, n);
}

/* ---- heap sort ---- */

static void sift_down(u32 *a, u32 root, u32 n)
{
	u32 v = a[root];
	for (;;) {
		u32 child = 2 * root + 1;
		if (child >= n)
			break;
		if (child + 1 < n && a[child + 1] > a[child])
			child++;
		if (a[child] <= v)
			break;
		a[root] = a[child];
		root = child;
	}
	a[root] = v;
}

static NOINLINE void heapsort_u32(u32 *a, u32 n)
{
	u32 i;
	if (n < 2)
		return;
	for (i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (i = n - 1; i > 0; i--) {
		u32 t = a[0];
		a[0] = a[i];
		a[i] = t;
		sift_down(a, 0, i);
	}
}

/* ---- generic sort with comparator ---- */

typedef int (*cmp_fn)(const void *, const void *);

static void gswap(u8 *a, u8 *b, u32 size)
{
	if ((size & 3) == 0) {
		u32 *x = (u32 *)a, *y = (u32 *)b;
		for (size >>= 2; size; size--, x++, y++) {
			u32 t = *x; *x = *y; *y = t;
		}
	} else {
		for (; size; size--, a++, b++) {
			u8 t = *a; *a = *b; *b = t;
		}
	}
}

static NOINLINE void gsort(void *base, u32 n, u32 size, cmp_fn cmp)
{
	u8 *a = base;
	while (n > 8) {
		u8 *lo = a, *hi = a + (n - 1) * size, *mid = a + (n >> 1) * size;
		u8 *i, *j;
		u32 left;
		if (cmp(mid, lo) < 0) gswap(mid, lo, size);
		if (cmp(hi, lo) < 0) gswap(hi, lo, size);
		if (cmp(hi, mid) < 0) gswap(hi, mid, size);
		/* Move the median of three to the front and partition the rest
		 * around it; the pivot then goes to its final slot j. */
		gswap(lo, mid, size);
		i = lo + size;
		j = hi;
		for (;;) {
			while (i <= j && cmp(i, lo) < 0) i += size;
			while (i <= j && cmp(j, lo) > 0) j -= size;
			if (i >= j)
				break;
			gswap(i, j, size);
			i += size;
			j -= size;
		}
		gswap(lo, j, size);	/* pivot to its final slot j */
		left = (u32)(j - a) / size;
		if (left < n - left - 1) {
			gsort(a, left, size, cmp);
			a = j + size;
			n = n - left - 1;
		} else {
			gsort(j + size, n - left - 1, size, cmp);
			n = left;
		}
	}
	/* insertion sort */
	{
		u32 k, m;
		for (k = 1; k < n; k++)
			for (m = k; m > 0 && cmp(a + (m - 1) * size, a + m * size) > 0; m--)
				gswap(a + (m - 1) * size, a + m * size, size);
	}
}

static int cmp_rec(const void *pa, const void *pb)
{
	const struct rec *a = pa, *b = pb;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	if (a->y != b->y)
		return a->y - b->y;
	return (int)a->tag - (int)b->tag;
}

static int cmp_i32_desc(const void *pa, const void *pb)
{
	i32 a = *(const i32 *)pa, b = *(const i32 *)pb;
	return (a < b) - (a > b);
}

/* ---- driver ---- */

u32 phase_sort(u32 *fail)
{
	u32 h = 0x534f5254u, s = 0xC0FFEEu, round, i;

	for (round = 0; round < 3; round++) {
		u32 sum_before = 0, sum_after = 0, x_before = 0, x_after = 0;
		u32 mask = round == 1 ? 0xff : 0xffffffffu; /* many duplicates */

		/* quicksort */
		for (i = 0; i < NSORT; i++) {
			arr_i[i] = (i32)(xs32(&s) & mask) - (i32)(mask >> 1);
			sum_before += (u32)arr_i[i];
			x_before ^= rotl32((u32)arr_i[i], i);
		}
		if (round == 2) /* already sorted input */
			qsort_i32(arr_i, NSORT);
		qsort_i32(arr_i, NSORT);
		for (i = 0; i < NSORT; i++) {
			sum_after += (u32)arr_i[i];
			if (i && arr_i[i - 1] > arr_i[i])
				*fail |= 2;
		}
		if (sum_before != sum_after)
			*fail |= 2;
		h = mix32(h, (u32)arr_i[0]);
		h = mix32(h, (u32)arr_i[NSORT / 3]);
		h = mix32(h, (u32)arr_i[NSORT - 1]);

		/* heap sort */
		sum_before = sum_after = 0;
		for (i = 0; i < NSORT; i++) {
			arr_u[i] = xs32(&s) & mask;
			sum_before += arr_u[i];
		}
		heapsort_u32(arr_u, NSORT);
		for (i = 0; i < NSORT; i++) {
			sum_after += arr_u[i];
			if (i && arr_u[i - 1] > arr_u[i])
				*fail |= 2;
		}
		if (sum_before != sum_after)
			*fail |= 2;
		h = mix32(h, arr_u[NSORT / 2]);
		h = mix32(h, arr_u[NSORT / 7]);

		/* generic sort of records */
		x_before = 0;
		for (i = 0; i < NSORT; i++) {
			u32 r = xs32(&s);
			arr_r[i].key = r & (mask >> 4);
			arr_r[i].tag = (u16)i;
			arr_r[i].x = (u8)(r >> 24);
			arr_r[i].y = (i8)(r >> 16);
			x_before += arr_r[i].tag * 3u + arr_r[i].x;
		}
		gsort(arr_r, NSORT, sizeof(struct rec), cmp_rec);
		x_after = 0;
		for (i = 0; i < NSORT; i++) {
			x_after += arr_r[i].tag * 3u + arr_r[i].x;
			if (i && cmp_rec(&arr_r[i - 1], &arr_r[i]) > 0)
				*fail |= 2;
		}
		if (x_before != x_after)
			*fail |= 2;
		for (i = 0; i < NSORT; i += 997)
			h = mix32(h, arr_r[i].key ^ ((u32)arr_r[i].tag << 16));

		/* generic sort of int32, descending */
		sum_before = sum_after = 0;
		for (i = 0; i < NSORT; i++) {
			arr_g[i] = (i32)xs32(&s) >> (round * 7);
			sum_before += (u32)arr_g[i];
		}
		gsort(arr_g, NSORT, sizeof(i32), cmp_i32_desc);
		for (i = 0; i < NSORT; i++) {
			sum_after += (u32)arr_g[i];
			if (i && arr_g[i - 1] < arr_g[i])
				*fail |= 2;
		}
		if (sum_before != sum_after)
			*fail |= 2;
		h = mix32(h, (u32)arr_g[1] ^ (u32)arr_g[NSORT - 2]);
		(void)x_before;
	}
	return h;
}
