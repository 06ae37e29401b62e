/**
 * The part of the WebAssembly JavaScript interface the machine uses. The
 * project's TypeScript settings include no DOM, which is where the standard
 * declarations live, so these few are written out here.
 */
declare global {
  namespace WebAssembly {
    class Memory {
      constructor(descriptor: { initial: number; maximum?: number });
      readonly buffer: ArrayBuffer;
    }
    class Module {
      constructor(bytes: Uint8Array<ArrayBuffer>);
    }
    type ExportValue = unknown;
    class Instance {
      constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, ExportValue>;
    }
    class Table {
      readonly length: number;
      grow(delta: number): number;
      set(index: number, value: unknown): void;
    }
  }
}

/** The one value type the translator uses: a 32-bit integer. */
export const I32 = 0x7f;
export const I64 = 0x7e;

/** A function's signature: its parameters and results. */
export interface Signature {
  params: number[];
  results: number[];
}

/** A growing array of bytes (plain arrays of numbers were the generator's largest cost). */
export class Bytes {
  data = new Uint8Array(1024);
  length = 0;

  push(byte: number): void {
    if (this.length === this.data.length) this.grow(1);
    this.data[this.length++] = byte;
  }

  /** Appends `bytes`. */
  append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.data.length) this.grow(bytes.length);
    this.data.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** The bytes written so far (a view, not a copy). */
  view(): Uint8Array<ArrayBuffer> {
    return this.data.subarray(0, this.length);
  }

  private grow(more: number): void {
    let size = this.data.length * 2;
    while (size < this.length + more) size *= 2;
    const data = new Uint8Array(size);
    data.set(this.data.subarray(0, this.length));
    this.data = data;
  }
}

/** Appends unsigned LEB128. */
function unsigned(out: Bytes, value: number): void {
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
}

/** Appends signed LEB128 of a 32-bit value. */
function signed(out: Bytes, value: number): void {
  value |= 0;
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

/** Signed LEB128 of a 64-bit value given as a bigint. */
function signed64(out: Bytes, value: bigint): void {
  value = BigInt.asIntN(64, value);
  for (;;) {
    const byte = Number(value & 0x7fn);
    value >>= 7n;
    if ((value === 0n && (byte & 0x40) === 0) || (value === -1n && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

function name(out: Bytes, text: string): void {
  const bytes = new TextEncoder().encode(text);
  unsigned(out, bytes.length);
  out.append(bytes);
}

/**
 * The body of one function, written instruction by instruction. Labels are
 * names: `br("loop")` counts the enclosing blocks to find the depth that
 * WebAssembly wants.
 */
export class Code {
  readonly bytes = new Bytes();
  private readonly labels: string[] = [];
  /** Local variable types after the parameters. */
  readonly locals: number[] = [];
  constructor(readonly paramCount: number) {}

  /** A new local of `type`; its index. */
  local(type = I32): number {
    this.locals.push(type);
    return this.paramCount + this.locals.length - 1;
  }

  /** One opcode byte, and a second (a block type) if given. */
  op(byte: number, second = -1): this {
    this.bytes.push(byte);
    if (second >= 0) this.bytes.push(second);
    return this;
  }

  get(local: number): this { this.bytes.push(0x20); unsigned(this.bytes, local); return this; }
  set(local: number): this { this.bytes.push(0x21); unsigned(this.bytes, local); return this; }
  tee(local: number): this { this.bytes.push(0x22); unsigned(this.bytes, local); return this; }
  i32(value: number): this { this.bytes.push(0x41); signed(this.bytes, value); return this; }
  i64(value: bigint): this { this.bytes.push(0x42); signed64(this.bytes, value); return this; }
  call(func: number): this { this.bytes.push(0x10); unsigned(this.bytes, func); return this; }
  returnCall(func: number): this { this.bytes.push(0x12); unsigned(this.bytes, func); return this; }
  returnCallIndirect(type: number, table = 0): this {
    this.bytes.push(0x13);
    unsigned(this.bytes, type);
    unsigned(this.bytes, table);
    return this;
  }

  /** Memory access with a static offset; alignment 0 (any address works). */
  private memory(opcode: number, offset: number): this {
    this.bytes.push(opcode);
    this.bytes.push(0);
    unsigned(this.bytes, offset >>> 0);
    return this;
  }
  load(offset = 0): this { return this.memory(0x28, offset); }
  load8(offset = 0): this { return this.memory(0x2d, offset); }
  load8s(offset = 0): this { return this.memory(0x2c, offset); }
  load16(offset = 0): this { return this.memory(0x2f, offset); }
  load16s(offset = 0): this { return this.memory(0x2e, offset); }
  store(offset = 0): this { return this.memory(0x36, offset); }
  store8(offset = 0): this { return this.memory(0x3a, offset); }
  store16(offset = 0): this { return this.memory(0x3b, offset); }

  // Structured control: every block is named, `end` closes the innermost.
  block(label: string): this { this.labels.push(label); return this.op(0x02, 0x40); }
  loop(label: string): this { this.labels.push(label); return this.op(0x03, 0x40); }
  if(label = "if"): this { this.labels.push(label); return this.op(0x04, 0x40); }
  /** An `if` whose arms each leave one i32. */
  ifValue(label = "if"): this { this.labels.push(label); return this.op(0x04, I32); }
  else(): this { return this.op(0x05); }
  end(): this { this.labels.pop(); return this.op(0x0b); }
  private depth(label: string): number {
    const at = this.labels.lastIndexOf(label);
    if (at < 0) throw new Error(`no enclosing block ${label}`);
    return this.labels.length - 1 - at;
  }
  br(label: string): this { this.bytes.push(0x0c); unsigned(this.bytes, this.depth(label)); return this; }
  brIf(label: string): this { this.bytes.push(0x0d); unsigned(this.bytes, this.depth(label)); return this; }
  brTable(targets: string[], otherwise: string): this {
    this.bytes.push(0x0e);
    unsigned(this.bytes, targets.length);
    for (const target of targets) unsigned(this.bytes, this.depth(target));
    unsigned(this.bytes, this.depth(otherwise));
    return this;
  }
  return(): this { return this.op(0x0f); }
  drop(): this { return this.op(0x1a); }
  select(): this { return this.op(0x1b); }

  // i32 arithmetic and comparisons.
  eqz(): this { return this.op(0x45); }
  eq(): this { return this.op(0x46); }
  ne(): this { return this.op(0x47); }
  ltS(): this { return this.op(0x48); }
  ltU(): this { return this.op(0x49); }
  gtS(): this { return this.op(0x4a); }
  gtU(): this { return this.op(0x4b); }
  leS(): this { return this.op(0x4c); }
  leU(): this { return this.op(0x4d); }
  geS(): this { return this.op(0x4e); }
  geU(): this { return this.op(0x4f); }
  clz(): this { return this.op(0x67); }
  ctz(): this { return this.op(0x68); }
  popcnt(): this { return this.op(0x69); }
  add(): this { return this.op(0x6a); }
  sub(): this { return this.op(0x6b); }
  mul(): this { return this.op(0x6c); }
  and(): this { return this.op(0x71); }
  or(): this { return this.op(0x72); }
  xor(): this { return this.op(0x73); }
  shl(): this { return this.op(0x74); }
  shrS(): this { return this.op(0x75); }
  shrU(): this { return this.op(0x76); }
  rotl(): this { return this.op(0x77); }
  rotr(): this { return this.op(0x78); }
  extend8(): this { return this.op(0xc0); }
  extend16(): this { return this.op(0xc1); }

  // The few i64 operations that multiplication and division need.
  i64ExtendS(): this { return this.op(0xac); }
  i64ExtendU(): this { return this.op(0xad); }
  i64Mul(): this { return this.op(0x7e); }
  i64DivS(): this { return this.op(0x7f); }
  i64DivU(): this { return this.op(0x80); }
  i64RemS(): this { return this.op(0x81); }
  i64RemU(): this { return this.op(0x82); }
  i64Or(): this { return this.op(0x84); }
  i64Shl(): this { return this.op(0x86); }
  i64ShrS(): this { return this.op(0x87); }
  i64ShrU(): this { return this.op(0x88); }
  i64Eq(): this { return this.op(0x51); }
  i64Ne(): this { return this.op(0x52); }
  i64Wrap(): this { return this.op(0xa7); }

  /** Appends the body in the code section's format: its size, its locals, its code, `end`. */
  encodeInto(out: Bytes): void {
    const head = new Bytes();
    const groups: [number, number][] = [];
    for (const type of this.locals) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === type) last[0]++;
      else groups.push([1, type]);
    }
    unsigned(head, groups.length);
    for (const [count, type] of groups) {
      unsigned(head, count);
      head.push(type);
    }
    unsigned(out, head.length + this.bytes.length + 1);
    out.append(head.view());
    out.append(this.bytes.view());
    out.push(0x0b);
  }
}

interface Import {
  module: string;
  field: string;
  kind: "function" | "memory" | "table";
  type?: number;
}

/** A module: types, imports, functions, a table and exports; `encode` gives its bytes. */
export class ModuleBuilder {
  private readonly types: Signature[] = [];
  private readonly imports: Import[] = [];
  private readonly functions: { type: number; code: Code }[] = [];
  private readonly exports: { field: string; kind: number; index: number }[] = [];
  private importedFunctions = 0;
  private table: { initial: number } | undefined;

  /** The index of `signature` in the type section, added if new. */
  type(signature: Signature): number {
    const key = JSON.stringify(signature);
    const found = this.types.findIndex((t) => JSON.stringify(t) === key);
    if (found >= 0) return found;
    this.types.push(signature);
    return this.types.length - 1;
  }

  /** Imports a function; its index. All imports come before the module's own functions. */
  importFunction(module: string, field: string, signature: Signature): number {
    if (this.functions.length > 0) throw new Error("imports come before functions");
    this.imports.push({ module, field, kind: "function", type: this.type(signature) });
    return this.importedFunctions++;
  }

  importMemory(module: string, field: string): void {
    this.imports.push({ module, field, kind: "memory" });
  }

  importTable(module: string, field: string): void {
    this.imports.push({ module, field, kind: "table" });
  }

  /** Defines table 0 (of functions) in this module. */
  defineTable(initial: number): void {
    this.table = { initial };
  }

  /** A new function of `signature`; its index and its code, to be filled in. */
  function(signature: Signature): { index: number; code: Code } {
    const code = new Code(signature.params.length);
    this.functions.push({ type: this.type(signature), code });
    return { index: this.importedFunctions + this.functions.length - 1, code };
  }

  exportFunction(field: string, index: number): void {
    this.exports.push({ field, kind: 0, index });
  }

  exportTable(field: string): void {
    this.exports.push({ field, kind: 1, index: 0 });
  }

  encode(): Uint8Array<ArrayBuffer> {
    const out = new Bytes();
    out.append(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
    const section = (id: number, body: Bytes) => {
      out.push(id);
      unsigned(out, body.length);
      out.append(body.view());
    };
    const types = new Bytes();
    unsigned(types, this.types.length);
    for (const signature of this.types) {
      types.push(0x60);
      unsigned(types, signature.params.length);
      for (const type of signature.params) types.push(type);
      unsigned(types, signature.results.length);
      for (const type of signature.results) types.push(type);
    }
    section(1, types);
    if (this.imports.length > 0) {
      const imports = new Bytes();
      unsigned(imports, this.imports.length);
      for (const entry of this.imports) {
        name(imports, entry.module);
        name(imports, entry.field);
        if (entry.kind === "function") {
          imports.push(0x00);
          unsigned(imports, entry.type!);
        } else if (entry.kind === "table") {
          imports.append(new Uint8Array([0x01, 0x70, 0x00, 0x00]));
        } else {
          imports.append(new Uint8Array([0x02, 0x00, 0x00]));
        }
      }
      section(2, imports);
    }
    const functions = new Bytes();
    unsigned(functions, this.functions.length);
    for (const f of this.functions) unsigned(functions, f.type);
    section(3, functions);
    if (this.table !== undefined) {
      const table = new Bytes();
      table.append(new Uint8Array([1, 0x70, 0x00]));
      unsigned(table, this.table.initial);
      section(4, table);
    }
    const exports = new Bytes();
    unsigned(exports, this.exports.length);
    for (const entry of this.exports) {
      name(exports, entry.field);
      exports.push(entry.kind);
      unsigned(exports, entry.index);
    }
    section(7, exports);
    const code = new Bytes();
    unsigned(code, this.functions.length);
    for (const f of this.functions) f.code.encodeInto(code);
    section(10, code);
    return out.view().slice();
  }
}
