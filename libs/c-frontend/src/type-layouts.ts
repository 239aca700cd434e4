import { createHash } from 'node:crypto';
import { run } from './ast';
import { QUIET_FLAGS } from './flags';
import { parseRecordLayouts, probeConstants, withTempFile } from './layout';
import type { FieldModel, TypeModel, UnitModel } from './program-model';
import { stripFunctionBodies } from './tokenizer';
import type { RecordInfo } from './unit-analysis';

/** A program type under construction: its model plus what the layout probe needs. */
export interface PendingType {
  model: TypeModel;
  /** C spelling of the type for sizeof (`struct S`, or the typedef name). */
  spelling: string;
  /** Fields with their designator path for offsetof (`anon.q`). */
  fields: { model: FieldModel; path: string }[];
  /** Name clang's record-layout dump uses for the record (bit-fields). */
  layoutName?: string;
  complete: boolean;
}

/**
 * Sizes, alignments, offsets and enumerator values of a unit's types, learned from the compiler:
 * the real compiler's layouts for the model, clang's on the instrumented text (with room) for
 * dsu-cc. Fills in the decoder's pending types in place.
 */
export class TypeLayouts {
  /** Why the preferred layout compiler was not used (empty when it was). */
  layoutErrors: string[] = [];
  layoutMethod = '';

  constructor(
    private readonly types: PendingType[],
    private readonly records: RecordInfo[],
    private readonly buf: Buffer,
    private readonly unit: UnitModel,
  ) {}

  /** Probe expressions for sizes, alignments, offsets and enumerator values of every type. */
  private layoutQueries(withRoom: boolean | ReadonlySet<string>) {
    const exprs: string[] = [];
    const slots: ((v: number | undefined) => void)[] = [];
    const ask = (e: string, set: (v: number | undefined) => void) => {
      exprs.push(e);
      slots.push(set);
    };
    const roomy: ReadonlySet<string> =
      typeof withRoom === 'boolean'
        ? new Set(this.records.filter((r) => r.updatable).map((r) => r.key))
        : withRoom;
    // Expressions that cannot compile cost a second probe run (the first fails and is retried
    // without them): leave out types this unit only declares, and flexible array members.
    const defined = new Set(
      this.types
        .filter((t) => t.model.kind !== 'typedef' || /\(unnamed\)$/.test(t.model.target ?? ''))
        .map((t) => t.model.key),
    );
    const typedefs = new Map(
      this.types.filter((t) => t.model.kind === 'typedef').map((t) => [t.model.key, t.model.target ?? '']),
    );
    const incomplete = (type: string, depth = 0): boolean => {
      if (/\[\]$/.test(type)) return true;
      if (/^(struct|union) /.test(type)) return !defined.has(type);
      const next = typedefs.get(type);
      return next !== undefined && depth < 16 && !defined.has(type) && incomplete(next, depth + 1);
    };
    for (const t of this.types) {
      const T = t.spelling;
      if (incomplete(t.model.key)) {
        t.complete = false;
        continue;
      }
      ask(`sizeof(${T})`, (v) => {
        if (v === undefined) t.complete = false;
        t.model.size = v ?? 0;
        t.model.capacity = v ?? 0;
      });
      ask(`__alignof__(${T})`, (v) => (t.model.align = v ?? 0));
      if (withRoom !== false && roomy.has(t.model.key)) {
        // after sizeof (answers arrive in order): size = bytes the fields use, capacity = sizeof
        ask(`__builtin_offsetof(${T}, __dsu_room)`, (v) => {
          if (v !== undefined) t.model.size = v;
        });
      }
      for (const f of t.fields) {
        if (f.model.value !== undefined) ask(`(long long)(${f.path})`, (v) => (f.model.value = v ?? 0));
        else if (!f.model.bitfield) {
          ask(`__builtin_offsetof(${T}, ${f.path})`, (v) => (f.model.offsetBits = (v ?? -1) * 8));
          if (!/\[\]$/.test(f.model.type))
            ask(`sizeof(((${T} *)0)->${f.path})`, (v) => (f.model.sizeBits = (v ?? 0) * 8));
        }
      }
    }
    return { exprs, slots };
  }

  /** See `UnitAnalysis.probeInstrumented`; returns how the layouts were learned. */
  async probeInstrumented(
    clang: string,
    semantic: string[],
    text: Buffer,
    cwd: string,
    roomy?: ReadonlySet<string>,
  ): Promise<string> {
    const { exprs, slots } = this.layoutQueries(roomy ?? true);
    const withBits = this.types.filter((t) => t.fields.some((f) => f.model.bitfield));
    // Bit-fields (offsetof cannot measure them) from clang's record layout dump in the same run.
    // Records are found in the dump by name; an unnamed record is named by its presumed location,
    // which the edits and the stripped bodies move: then the plain unit is dumped on its own.
    const sameRun = withBits.every((t) => t.layoutName && !t.layoutName.includes('(unnamed at '));
    const dumpFlags = withBits.length > 0 && sameRun ? ['-Xclang', '-fdump-record-layouts-complete'] : [];
    let method = 'instrumented-stripped';
    // Types only: without the function bodies the probe is a fraction of a compile.
    const probe = await probeConstants(
      clang,
      [...semantic, ...dumpFlags],
      stripFunctionBodies(text),
      exprs,
      cwd,
      'cpp-output',
    ).catch(() => {
      method = 'instrumented';
      return probeConstants(clang, [...semantic, ...dumpFlags], text, exprs, cwd, 'cpp-output');
    });
    probe.values.forEach((v, i) => slots[i](v));
    if (withBits.length > 0) {
      const dumped = dumpFlags.length > 0 && probe.output.includes('*** Dumping AST Record Layout');
      this.applyBitfields(
        withBits,
        dumped ? probe.output : await this.dumpRecordLayouts(clang, semantic, this.buf, cwd),
      );
    }
    this.finishLayouts();
    return method;
  }

  /** clang's record layout dump of a preprocessed unit (its `.i` file, or its text) (stdout and stderr). */
  private async dumpRecordLayouts(
    clang: string,
    semantic: string[],
    unit: string | Buffer,
    cwd: string,
  ): Promise<string> {
    const dump = (file: string) =>
      run(
        clang,
        [
          '-fsyntax-only',
          '-Xclang',
          '-fdump-record-layouts-complete',
          ...semantic,
          ...QUIET_FLAGS,
          '-x',
          'cpp-output',
          file,
        ],
        { cwd, what: `record layouts of ${this.unit.path}` },
      );
    const { stderr, stdout } =
      typeof unit === 'string' ? await dump(unit) : await withTempFile(unit, '.i', dump);
    return stdout.toString('utf8') + stderr;
  }

  /** Bit offsets of bit-fields from a record layout dump (-1 when the dump does not have them). */
  private applyBitfields(withBits: readonly PendingType[], dump: string): void {
    const layouts = parseRecordLayouts(dump);
    for (const t of withBits) {
      const rec = t.layoutName ? layouts.get(t.layoutName) : undefined;
      for (const f of t.fields) {
        if (!f.model.bitfield) continue;
        const l = rec?.get(f.path);
        f.model.offsetBits = l ? l.offsetBits : -1;
      }
    }
  }

  private finishLayouts(): void {
    for (const t of this.types) {
      t.model.fields = t.fields.map((f) => f.model);
      if (!t.complete) t.model.incomplete = true;
      t.model.layoutHash = layoutHash(t.model);
    }
  }

  /**
   * Fills sizes, alignments, offsets and enumerator values; returns the compiler that answered.
   * The real compiler (`cc`) probes the original source with the real preprocessing flags (a
   * clang-preprocessed `.i` is not valid input for gcc: glibc picks compiler-specific branches);
   * clang on the `.i` is the fallback.
   */
  async probeLayouts(p: {
    clang: string;
    semantic: string[];
    iFile: string;
    cwd: string;
    compiler: string;
    source: string;
    preprocessFlags: string[];
  }): Promise<string> {
    const { clang, semantic, iFile, cwd } = p;
    const { exprs, slots } = this.layoutQueries(false);
    // 1. real compiler, its own preprocessing, function bodies stripped (fast: types only)
    // 2. real compiler on the whole source; 3. clang on the .i
    // The same clang as the AST (dsu-cc): its `.i` with the bodies stripped is the prelude, so no
    // second preprocessing run; the whole `.i` is the fallback.
    const sameClang = p.compiler === clang;
    const attempts: [
      string,
      string,
      () => Promise<{ flags: string[]; prelude: Buffer; lang: 'c' | 'cpp-output' }>,
    ][] = sameClang
      ? [
          [
            clang,
            'clang-i-stripped',
            async () => ({ flags: semantic, prelude: stripFunctionBodies(this.buf), lang: 'cpp-output' }),
          ],
          [clang, 'clang-i', async () => ({ flags: semantic, prelude: this.buf, lang: 'cpp-output' })],
        ]
      : [
          [
            p.compiler,
            'stripped-bodies',
            async () => {
              const { stdout } = await run(
                p.compiler,
                ['-E', ...p.preprocessFlags, '-w', '-x', 'c', p.source, '-o', '-'],
                {
                  cwd,
                  what: `preprocessing for the layout probe (${p.compiler})`,
                },
              );
              return { flags: p.semantic, prelude: stripFunctionBodies(stdout), lang: 'cpp-output' };
            },
          ],
          [
            p.compiler,
            'whole-source',
            async () => ({
              flags: p.preprocessFlags,
              prelude: Buffer.from(`#include ${JSON.stringify(p.source)}\n`),
              lang: 'c',
            }),
          ],
          [clang, 'clang-i', async () => ({ flags: semantic, prelude: this.buf, lang: 'cpp-output' })],
        ];
    let used = '';
    let values: (number | undefined)[] = [];
    const errors: string[] = [];
    for (const [cc, method, prepare] of attempts) {
      try {
        const { flags, prelude, lang } = await prepare();
        values = (await probeConstants(cc, flags, prelude, exprs, cwd, lang)).values;
        used = cc;
        this.layoutMethod = method;
        break;
      } catch (e) {
        errors.push((e as Error).message.slice(0, 4000));
      }
    }
    if (!used) throw new Error(`layout probe of ${this.unit.path} failed:\n${errors.join('\n')}`);
    if (used !== p.compiler) this.layoutErrors = errors;
    values.forEach((v, i) => slots[i](v));

    // bit-fields: offsetof cannot measure them; ask clang's record layout dump
    const withBits = this.types.filter((t) => t.fields.some((f) => f.model.bitfield));
    if (withBits.length > 0)
      this.applyBitfields(withBits, await this.dumpRecordLayouts(clang, semantic, iFile, cwd));
    this.finishLayouts();
    return used;
  }
}

/** sha256 over what decides a type's layout: kind, size, alignment, fields (name, type, offset, size). */
export function layoutHash(
  t: Pick<TypeModel, 'kind' | 'size' | 'align' | 'fields'> & { target?: string },
): string {
  const body = JSON.stringify([
    t.kind,
    t.size,
    t.align,
    t.target ?? '',
    t.fields.map((f) => [f.name, f.type, f.offsetBits, f.sizeBits, f.value ?? null]),
  ]);
  return createHash('sha256').update(body).digest('hex');
}
