import { unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './ast';
import { regionAt, type MarkedRegion } from './line-markers';

/**
 * Type layouts as the real compiler lays them out, learned like Linux's asm-offsets: the unit
 * (its source included with the real flags, or its `.i`) is compiled to assembly (`cc -S`, never assembled, linked or run, so it works for
 * cross targets and for units that define `main`) with one extra function whose inline-asm
 * statements print compile-time constants (`sizeof`, `__alignof__`, `__builtin_offsetof`,
 * enumerator values) through `"i"` operands into `.ascii "@@DSUPROBE …"` lines of the output.
 * Expressions the compiler rejects (incomplete types, flexible array members) are dropped by the
 * line numbers of the diagnostics and the probe is retried.
 */
const PROBE_FILE = 'dsu-layout-probe.c';
const PROBE_LINE = /@@DSUPROBE (\d+) (-?\d+)/g;

export interface ProbeResult {
  values: (number | undefined)[];
  compiler: string;
  /** The compiler's output (assembly, then whatever extra flags such as `-fdump-record-layouts-complete` print) of the run that answered; empty when nothing ran. */
  output: string;
}

export async function probeConstants(
  compiler: string,
  flags: string[],
  /** Text that brings the types into scope: the `.i`, or `#include "/abs/unit.c"`. */
  prelude: Buffer,
  exprs: string[],
  cwd?: string,
  /** `c` for source text, `cpp-output` for an already preprocessed prelude. */
  lang: 'c' | 'cpp-output' = 'c',
): Promise<ProbeResult> {
  const values: (number | undefined)[] = new Array(exprs.length).fill(undefined);
  if (exprs.length === 0) return { values, compiler, output: '' };
  const live = new Set(exprs.map((_, i) => i));
  for (let attempt = 0; attempt < 4 && live.size > 0; attempt++) {
    const order = [...live];
    const lines = order.map(
      (i) => `__asm__ volatile(".ascii \\"@@DSUPROBE ${i} %c0\\"" :: "i"(${exprs[i]}));`,
    );
    const text = `\n# 1 "${PROBE_FILE}"\nvoid dsu__layout_probe__(void) {\n${lines.join('\n')}\n}\n`;
    try {
      const { stdout } = await withTempFile(Buffer.concat([prelude, Buffer.from(text)]), '.c', (file) =>
        run(compiler, [...flags, '-w', '-x', lang, '-S', '-o', '-', file], {
          cwd,
          what: `layout probe (${compiler})`,
        }),
      );
      const output = stdout.toString('latin1');
      for (const m of output.matchAll(PROBE_LINE)) values[Number(m[1])] = Number(m[2]);
      return { values, compiler, output };
    } catch (e) {
      const msg = (e as Error).message;
      const bad = [
        ...msg.matchAll(new RegExp(`${PROBE_FILE.replace(/\./g, '\\.')}:(\\d+):\\d+: error`, 'g')),
      ].map((m) => Number(m[1]) - 2);
      const allErrors = (msg.match(/:\d+:\d+: error/g) ?? []).length;
      if (bad.length === 0 || bad.length < allErrors) throw e;
      for (const b of bad) if (b >= 0 && b < order.length) live.delete(order[b]);
    }
  }
  return { values, compiler, output: '' };
}

let tempSeq = 0;

/**
 * Runs `fn` with `contents` in a fresh temporary file (created exclusively, removed afterwards):
 * one file instead of a temporary directory per run, and not stdin, which a compiler that fails
 * early (a bad flag) would leave unread.
 */
export async function withTempFile<T>(
  contents: Buffer,
  ext: string,
  fn: (file: string) => Promise<T>,
): Promise<T> {
  const file = join(tmpdir(), `dsu-${process.pid}-${Date.now().toString(36)}-${tempSeq++}${ext}`);
  await writeFile(file, contents, { flag: 'wx', mode: 0o600 });
  try {
    return await fn(file);
  } finally {
    await unlink(file).catch(() => undefined);
  }
}

export interface BitfieldLayout {
  offsetBits: number;
  widthBits: number;
}

/**
 * Parses `clang -Xclang -fdump-record-layouts-complete` output into record name → field path
 * (`a`, `nested.b`; anonymous members add no path element) → bit offset/width from the start of
 * the record. Used for bit-fields, which `offsetof` cannot measure.
 */
export function parseRecordLayouts(text: string): Map<string, Map<string, BitfieldLayout>> {
  const out = new Map<string, Map<string, BitfieldLayout>>();
  const lines = text.split('\n');
  const FIELD = /^\s*(\d+)(?::(\d+)-(\d+))? \|( +)(.*)$/;
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('*** Dumping AST Record Layout')) continue;
    const head = FIELD.exec(lines[i + 1] ?? '');
    if (!head) continue;
    const name = head[5].trim();
    const base = head[4].length;
    const fields = new Map<string, BitfieldLayout>();
    const names: string[] = []; // enclosing member names by nesting level ('' = anonymous member)
    for (i += 2; i < lines.length; i++) {
      const m = FIELD.exec(lines[i]);
      if (!m) break;
      const level = (m[4].length - base) / 2 - 1;
      if (level < 0 || !Number.isInteger(level)) continue;
      const fieldName = /\s([A-Za-z_$][\w$]*)$/.exec(m[5].trim())?.[1] ?? '';
      names.length = level;
      names[level] = fieldName;
      if (!fieldName) continue;
      const path = names.filter(Boolean).join('.');
      const byte = Number(m[1]);
      if (m[2] !== undefined) {
        fields.set(path, { offsetBits: byte * 8 + Number(m[2]), widthBits: Number(m[3]) - Number(m[2]) + 1 });
      } else fields.set(path, { offsetBits: byte * 8, widthBits: -1 });
    }
    if (!out.has(name)) out.set(name, fields);
  }
  return out;
}

/** `file:line:col` of a byte offset as clang presumes it from the line markers (for unnamed records). */
export function presumedLoc(
  unit: Buffer,
  regions: readonly MarkedRegion[],
  offset: number,
): string | undefined {
  const r = regionAt(regions, offset);
  if (!r) return undefined;
  let line = r.line;
  for (let p = unit.indexOf(0x0a, r.start); p >= 0 && p < offset; p = unit.indexOf(0x0a, p + 1)) line++;
  const bol = unit.lastIndexOf(0x0a, offset - 1) + 1;
  return `${r.file}:${line}:${offset - bol + 1}`;
}
