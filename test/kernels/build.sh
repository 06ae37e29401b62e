#!/usr/bin/env bash
# Build every test kernel (test/kernels/*.c) into test/kernels/bin/NAME.elf.
# Reproducible: fixed flags, no build id, source paths mapped to ".".
# Usage: bash test/kernels/build.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
CC=${CC:-gcc}
CFLAGS=(-m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie -no-pie -O1
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables
	-fno-builtin -mno-sse -mno-mmx -mno-80387 -Wall -Wno-main
	-ffile-prefix-map="$here"=. -Ilib)
LDFLAGS=(-Wl,--build-id=none -Wl,-T,"$here"/lib/link.ld -Wl,-z,max-page-size=0x1000 -Wl,-n -Wl,--no-warn-rwx-segments)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in *.c; do names+=("${f%.c}"); done
fi
mkdir -p bin
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
# Objects get fixed names (boot.o, rt.o, NAME.o): they end up in the symbol table.
"$CC" "${CFLAGS[@]}" -c -o "$obj/boot.o" lib/boot.S
"$CC" "${CFLAGS[@]}" -c -o "$obj/rt.o" lib/rt.c
for n in "${names[@]}"; do
	"$CC" "${CFLAGS[@]}" -c -o "$obj/$n.o" "$n.c"
	(cd "$obj" && "$CC" "${CFLAGS[@]}" "${LDFLAGS[@]}" -o "$here/bin/$n.elf" boot.o rt.o "$n.o" -lgcc)
	echo "built bin/$n.elf"
done
