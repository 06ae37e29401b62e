// The symbol table of a 32-bit ELF file, for tests that need to know where
// the linker put something in images/vmlinux (so that they survive a rebuild).
// The reading is the program's own (src/launcher/elf.ts).
import { readSymbolTables } from "../../src/launcher/elf.ts";

export interface ElfSymbol {
  value: number;
  size: number;
}

/** The symbol table of a 32-bit ELF file, by name. */
export function symbols(elf: Uint8Array): Map<string, ElfSymbol> {
  const result = new Map<string, ElfSymbol>();
  for (const { name, value, size } of readSymbolTables(elf)) result.set(name, { value, size });
  return result;
}
