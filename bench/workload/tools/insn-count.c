/* QEMU TCG plugin (API version 1, QEMU 7.2) that counts executed guest
 * instructions per address.  Measurement tool only; not part of the
 * workload.  Build:
 *   gcc -shared -fPIC -O2 -o insn-count.so insn-count.c
 * Run:
 *   qemu-i386 -plugin ./insn-count.so,out=counts.txt workload.elf  (see count.sh)
 * counts.txt gets one line per executed address: "vaddr count disasm".
 * A rep-prefixed string instruction counts once per iteration (QEMU
 * re-enters the instruction for each iteration), as in valgrind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb *));
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
	enum qemu_plugin_op op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t, void *), void *userdata);

#define BASE 0x08048000u
#define SPAN (1u << 20)

static uint64_t *counts;
static char **disas;
static const char *outpath = "counts.txt";

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t i, n = qemu_plugin_tb_n_insns(tb);
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint64_t va = qemu_plugin_insn_vaddr(insn);
		uint64_t k = va - BASE;
		if (k >= SPAN) {
			fprintf(stderr, "insn-count: address %#llx outside range\n",
				(unsigned long long)va);
			continue;
		}
		if (!disas[k])
			disas[k] = qemu_plugin_insn_disas(insn);
		qemu_plugin_register_vcpu_insn_exec_inline(
			insn, QEMU_PLUGIN_INLINE_ADD_U64, &counts[k], 1);
	}
}

static void on_exit_cb(qemu_plugin_id_t id, void *p)
{
	FILE *f = fopen(outpath, "w");
	uint64_t k, total = 0;
	if (!f)
		return;
	for (k = 0; k < SPAN; k++)
		if (counts[k]) {
			fprintf(f, "%08llx %llu %s\n", (unsigned long long)(k + BASE),
				(unsigned long long)counts[k], disas[k] ? disas[k] : "?");
			total += counts[k];
		}
	fclose(f);
	fprintf(stderr, "insn-count: total %llu\n", (unsigned long long)total);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
			int argc, char **argv)
{
	int i;
	for (i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			outpath = argv[i] + 4;
	counts = calloc(SPAN, sizeof *counts);
	disas = calloc(SPAN, sizeof *disas);
	if (!counts || !disas)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
	qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
	return 0;
}
