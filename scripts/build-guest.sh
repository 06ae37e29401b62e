#!/usr/bin/env bash
# Builds the book's Guest kernel (tangled from book/guest*.md and
# book/drivers.md into src/guest/) into OUTPUT/vmlinux and OUTPUT/bzImage,
# and describes the build in OUTPUT/guest.json. The same sources and tools
# give the same bytes: no build id, source paths mapped to ".", gzip -n.
# Usage: scripts/build-guest.sh [OUTPUT]   (OUTPUT defaults to images/)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-images}
mkdir -p "$out"
out=$(cd "$out" && pwd)
CC=${CC:-gcc}
OBJCOPY=${OBJCOPY:-objcopy}
NM=${NM:-nm}
export LC_ALL=C TZ=UTC
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CFLAGS=(-m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie -no-pie -O2
	-fno-stack-protector -mgeneral-regs-only -mpreferred-stack-boundary=2
	-fno-asynchronous-unwind-tables -fno-unwind-tables -fno-tree-loop-distribute-patterns
	-fno-ident -Wa,--noexecstack -Wall -Wextra -Wno-unused-parameter -Werror
	-ffile-prefix-map="$root"=.)
LDFLAGS=(-Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,--no-warn-rwx-segments)

fail() { echo "build-guest: $*" >&2; exit 1; }

# 1. The user programs, linked at USER_BASE and flattened into user.bin,
#    which user-image.S includes.
"$CC" "${CFLAGS[@]}" -c -o "$work/crt0.o" src/guest/user/crt0.S
"$CC" "${CFLAGS[@]}" -c -o "$work/programs.o" src/guest/user/programs.c
"$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" -Wl,-T,src/guest/user/user.ld -o "$work/user.elf" \
	"$work/crt0.o" "$work/programs.o"
"$OBJCOPY" -O binary "$work/user.elf" "$work/user.bin"

# 2. The kernel, in the order the linker should see it (head.S first: it
#    holds GenuineLguest, though guest.ld puts its section first anyway).
objects=()
for source in head.S boot.c hypercalls.c traps.c memory.c process.c shell.c \
	lguest_bus.c console.c block.c net.c inet.c printk.c lib.c user-image.S; do
	object="$work/${source%.*}.o"
	"$CC" "${CFLAGS[@]}" -Wa,-I,"$work" -c -o "$object" "src/guest/$source"
	objects+=("$object")
done
"$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" -Wl,-T,src/guest/guest.ld -o "$work/vmlinux" "${objects[@]}"

# 3. The flat image (physical 1 MiB onwards, no BSS), and the checks the
#    Launcher's bzImage path depends on (spec 1.4).
"$OBJCOPY" -O binary "$work/vmlinux" "$work/flat.bin"
genuine=$(grep -obUa GenuineLguest "$work/flat.bin" | head -1 | cut -d: -f1)
[ "$genuine" = 0 ] || fail "GenuineLguest is not at the start of the image (found at ${genuine:-nowhere})"
loads=$(grep -obUaP '\xa1[\x00-\xff]{3}\xc0' "$work/flat.bin" | wc -l)
[ "$loads" -ge 4 ] || fail "only $loads mov 0xC0xxxxxx,%eax instructions: the Launcher cannot guess PAGE_OFFSET"

# 4. The bzImage: a 512-byte setup block with no gzip header in it, then
#    the gzip of the flat image.
printf '%s' "lguest.ts guest kernel. This block is never run: the lguest Launcher skips to the gzip member after it and unpacks that at 1 MiB." > "$work/bzImage"
truncate -s 510 "$work/bzImage"
printf '\125\252' >> "$work/bzImage"
gzip -9n < "$work/flat.bin" >> "$work/bzImage"
[ "$(od -An -tx1 -j512 -N3 "$work/bzImage" | tr -d ' ')" = 1f8b08 ] || fail "no gzip member at offset 512"
[ "$(od -An -tx1 -j521 -N1 "$work/bzImage" | tr -d ' ')" = 03 ] || fail "the gzip header's OS byte is not 3 (Unix)"

cp "$work/vmlinux" "$work/bzImage" "$out/"

# 5. What was built, and with what.
symbol() { "$NM" -S "$work/vmlinux" | awk -v name="$1" '$NF == name { print $1 " " ($2 ~ /^[0-9a-f]+$/ && NF == 4 ? $2 : "0") }'; }
read -r data_address data_size < <(symbol lguest_data)
read -r start_address _ < <(symbol lguest_start)
first() { "$@" 2>&1 | head -1; }
cat > "$out/guest.json" <<JSON
{
  "built_by": "scripts/build-guest.sh",
  "tools": {
    "gcc": "$(first "$CC" --version)",
    "ld": "$(first "$("$CC" -print-prog-name=ld)" --version)",
    "objcopy": "$(first "$OBJCOPY" --version)",
    "gzip": "$(first gzip --version)"
  },
  "vmlinux": { "bytes": $(stat -c %s "$out/vmlinux"), "sha256": "$(sha256sum "$out/vmlinux" | cut -d' ' -f1)" },
  "bzImage": { "bytes": $(stat -c %s "$out/bzImage"), "sha256": "$(sha256sum "$out/bzImage" | cut -d' ' -f1)", "unpacked_bytes": $(stat -c %s "$work/flat.bin") },
  "lguest_start": "0x$start_address",
  "lguest_data": { "address": "0x$data_address", "bytes": $((16#$data_size)) },
  "user_programs_bytes": $(stat -c %s "$work/user.bin"),
  "mov_eax_loads_with_top_byte_c0": $loads
}
JSON
echo "build-guest: $out/vmlinux ($(stat -c %s "$out/vmlinux") bytes), $out/bzImage ($(stat -c %s "$out/bzImage") bytes)"
