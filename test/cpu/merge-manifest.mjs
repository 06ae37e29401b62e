// Merges per-file manifest fragments (written by test/cpu/qemu/) into
// test/cpu/vectors/MANIFEST.json, or keeps the entries of files that another
// generator wrote when the native generator rewrote the manifest.
//   node merge-manifest.mjs MANIFEST.json fragment.json...   add or replace files
//   node merge-manifest.mjs --keep OLD.json MANIFEST.json    copy OLD's entries for files
//                                                            missing from MANIFEST.json
// Every file entry has a "recorded_by" field; undefined_flags gets the
// fragments' forms.
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";

const args = process.argv.slice(2);
const NATIVE = "native: the real CPU in 64-bit user mode with architecturally equivalent encodings (field exec); see test/cpu/native/README.md";

function write(path, manifest) {
  // the generators' layout: one line per file entry and per form
  const body = Object.entries(manifest).map(([key, value]) => {
    if (key === "files" || key === "undefined_flags") {
      const lines = Object.entries(value).map(([name, entry]) => `${JSON.stringify(name)}:${JSON.stringify(entry)}`);
      return `${JSON.stringify(key)}:{\n${lines.join(",\n")}\n}`;
    }
    return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
  });
  writeFileSync(path, `{\n${body.join(",\n")}\n}\n`);
}

if (args[0] === "--keep") {
  const [, oldPath, path] = args;
  const manifest = JSON.parse(readFileSync(path, "utf8"));
  for (const entry of Object.values(manifest.files)) entry.recorded_by ??= NATIVE;
  if (existsSync(oldPath)) {
    const old = JSON.parse(readFileSync(oldPath, "utf8"));
    for (const [name, entry] of Object.entries(old.files ?? {})) {
      if (manifest.files[name] || !existsSync(join(dirname(path), name))) continue;
      manifest.files[name] = entry;
      if (old.qemu_recording) manifest.qemu_recording = old.qemu_recording;
      for (const form of entry.forms ?? []) {
        if (old.undefined_flags?.[form] !== undefined) manifest.undefined_flags[form] = old.undefined_flags[form];
      }
    }
  }
  write(path, manifest);
} else {
  const [path, ...fragments] = args;
  const manifest = existsSync(path)
    ? JSON.parse(readFileSync(path, "utf8"))
    : { format: "lguest.ts-cpu-vectors/1", files: {}, undefined_flags: {} };
  manifest.undefined_flags ??= {};
  for (const entry of Object.values(manifest.files)) entry.recorded_by ??= NATIVE;
  for (const fragmentPath of fragments) {
    const { file, undefined_flags: undef, ...entry } = JSON.parse(readFileSync(fragmentPath, "utf8"));
    manifest.files[file] = { recorded_by: entry.recorded_by, ...entry };
    for (const [form, mask] of Object.entries(undef)) {
      const other = Object.entries(manifest.files).find(([name, e]) => name !== file && e.forms?.includes(form));
      if (other) console.error(`warning: form "${form}" of ${file} is also in ${other[0]}`);
      manifest.undefined_flags[form] = mask;
    }
  }
  manifest.qemu_recording =
    "the qemu-*.jsonl.gz files cover the native not_covered list, recorded under qemu-i386 (TCG), not on a real CPU; see test/cpu/qemu/README.md";
  write(path, manifest);
}
