// The symbol table of a 32-bit ELF file, for tests that need to know where
// the linker put something in images/vmlinux (so that they survive a rebuild).

export interface ElfSymbol {
  value: number;
  size: number;
}

/** The symbol table of a 32-bit ELF file, by name. */
export function symbols(elf: Uint8Array): Map<string, ElfSymbol> {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const shoff = view.getUint32(32, true), shentsize = view.getUint16(46, true), shnum = view.getUint16(48, true);
  const section = (i: number) => ({
    type: view.getUint32(shoff + i * shentsize + 4, true),
    offset: view.getUint32(shoff + i * shentsize + 16, true),
    size: view.getUint32(shoff + i * shentsize + 20, true),
    link: view.getUint32(shoff + i * shentsize + 24, true),
  });
  const result = new Map<string, ElfSymbol>();
  for (let i = 0; i < shnum; i++) {
    const symtab = section(i);
    if (symtab.type !== 2) continue;
    const strtab = section(symtab.link);
    for (let at = symtab.offset; at < symtab.offset + symtab.size; at += 16) {
      let end = strtab.offset + view.getUint32(at, true);
      const start = end;
      while (elf[end]) end++;
      const name = new TextDecoder().decode(elf.subarray(start, end));
      if (name) result.set(name, { value: view.getUint32(at + 4, true), size: view.getUint32(at + 8, true) });
    }
  }
  return result;
}
