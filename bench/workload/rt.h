/* Shared types and helpers for the freestanding i386 benchmark workload. */
#ifndef WORKLOAD_RT_H
#define WORKLOAD_RT_H

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef short i16;
typedef unsigned int u32;
typedef int i32;
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int size_t;

#define NOINLINE __attribute__((noinline))

/* System calls (int $0x80): the only two the runner provides. */
void sys_write(int fd, const void *buf, u32 len);
__attribute__((noreturn)) void sys_exit(int status);

/* Symbols the compiler may call on its own. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* xorshift32: small deterministic PRNG. */
static inline u32 xs32(u32 *s)
{
	u32 x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static inline u32 rotl32(u32 x, u32 r)
{
	r &= 31;
	return (x << r) | (x >> ((32 - r) & 31));
}

/* Order-dependent 32-bit mixing used to fold results into checksums. */
static inline u32 mix32(u32 h, u32 v)
{
	h ^= v;
	h *= 0x9E3779B1u;
	h = rotl32(h, 13);
	h += 0x7F4A7C15u;
	return h;
}

/* Phase entry points.  Each returns a 32-bit digest and ORs a bit into
 * *fail if one of its internal self-checks does not hold. */
u32 phase_crc(u32 *fail);
u32 phase_sort(u32 *fail);
u32 phase_string(u32 *fail);
u32 phase_arith64(u32 *fail);
u32 phase_vm(u32 *fail);
u32 phase_bits(u32 *fail);

#endif
