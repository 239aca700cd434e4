import { run } from './ast';
import { QUIET_FLAGS } from './flags';
import { probeConstants, withTempFile } from './layout';
import type { UnitModel } from './program-model';
import { stripFunctionBodies } from './tokenizer';
import { applyBitfields, finishLayouts, layoutQueries, type PendingType } from './type-layouts';
import type { RecordInfo } from './unit-analysis';

/**
 * Sizes, alignments, offsets and enumerator values of a unit's types, learned from the compiler
 * (see {@link probeConstants}): the real compiler's layouts for the model, clang's on the
 * instrumented text (with room) for dsu-cc. Fills in the decoder's pending types in place.
 */
export class LayoutProbe {
  /** Why the preferred layout compiler was not used (empty when it was). */
  layoutErrors: string[] = [];
  layoutMethod = '';

  constructor(
    private readonly types: PendingType[],
    private readonly records: RecordInfo[],
    /** The preprocessed unit. */
    private readonly buf: Buffer,
    private readonly unit: UnitModel,
  ) {}

  /** See `UnitAnalysis.probeInstrumented`; returns how the layouts were learned. */
  async probeInstrumented(
    clang: string,
    semantic: string[],
    text: Buffer,
    cwd: string,
    roomy?: ReadonlySet<string>,
  ): Promise<string> {
    const { exprs, slots } = layoutQueries(this.types, this.records, roomy ?? true);
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
      applyBitfields(
        withBits,
        dumped ? probe.output : await this.dumpRecordLayouts(clang, semantic, this.buf, cwd),
      );
    }
    finishLayouts(this.types);
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
    const { exprs, slots } = layoutQueries(this.types, this.records, false);
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
      applyBitfields(withBits, await this.dumpRecordLayouts(clang, semantic, iFile, cwd));
    finishLayouts(this.types);
    return used;
  }
}
