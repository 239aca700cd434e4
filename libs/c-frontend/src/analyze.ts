import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve as resolvePath } from 'node:path';
import { dumpTopLevel, run } from './ast';
import { findClang } from './clang';
import { QUIET_FLAGS, splitFlags } from './flags';
import { LayoutProbe } from './layout-probe';
import { parseLineMarkers, regionAt } from './line-markers';
import type { UnitModel } from './program-model';
import type { AnalyzeOptions, UnitAnalysis } from './unit-analysis';
import { UnitDecoder } from './unit-decoder';
import { blankUnusedPrototypes } from './unused-prototypes';

/** Preprocesses, dumps and decodes one translation unit. */
export async function analyzeUnit(opts: AnalyzeOptions): Promise<UnitAnalysis> {
  const clang = opts.clang ?? findClang().path;
  const cwd = resolvePath(opts.cwd);
  const sourceAbs = isAbsolute(opts.source) ? opts.source : resolvePath(cwd, opts.source);
  const unitPath = opts.unitPath ?? (isAbsolute(opts.source) ? relative(cwd, opts.source) : opts.source);
  const split = splitFlags(opts.flags);

  // 1. preprocess with the real flags
  const t0 = Date.now();
  let preprocessed: Buffer;
  try {
    // the source as the real compile names it, so __FILE__ and the line markers match it
    const pp = await run(
      clang,
      [
        '-E',
        ...split.preprocess,
        ...(opts.preprocessFlags ?? []),
        ...QUIET_FLAGS,
        '-x',
        'c',
        opts.source,
        '-o',
        '-',
      ],
      {
        cwd,
        what: `preprocessing ${unitPath}`,
      },
    );
    preprocessed = pp.stdout;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') findClang({ DSU_CLANG: clang });
    throw e;
  }
  const regions = parseLineMarkers(preprocessed);
  const runtimeHeaders = opts.runtimeHeaders ?? ['dsu.h'];
  const isRuntime = (file: string) => runtimeHeaders.some((h) => file === h || file.endsWith(`/${h}`));
  const inProgram = (offset: number | undefined) => {
    if (offset === undefined) return true; // decide after parsing
    const r = regionAt(regions, offset);
    return !!r && !r.system && !isRuntime(r.file);
  };

  const dir = await mkdtemp(join(tmpdir(), 'dsu-cfe-'));
  let cleanupLater = false;
  try {
    const iFile = join(dir, 'unit.i');
    await writeFile(iFile, preprocessed);

    // 2. JSON AST of the .i, keeping only program declarations. clang reads the unit with the
    // prototypes nothing names blanked out (offsets unchanged); should it not accept that text,
    // the unit as it is.
    const t1 = Date.now();
    const unit: UnitModel = { path: unitPath, id: unitId(unitPath), flags: [...opts.flags] };
    const blank =
      opts.keepUnusedPrototypes === true
        ? { text: preprocessed, declarations: 0 }
        : blankUnusedPrototypes(preprocessed, (offset) => inProgram(offset));
    const astFile = blank.declarations > 0 ? join(dir, 'unit-ast.i') : iFile;
    if (astFile !== iFile) await writeFile(astFile, blank.text);
    const dumpAst = (input: string) => {
      const decoder = new UnitDecoder(unit, preprocessed, regions, opts);
      const done = dumpTopLevel({
        clang,
        args: [
          '-Xclang',
          '-ast-dump=json',
          '-fsyntax-only',
          ...split.semantic,
          ...QUIET_FLAGS,
          '-x',
          'cpp-output',
          input,
        ],
        cwd,
        unitPath,
        streamThresholdBytes: opts.streamThresholdBytes,
        forceStreaming: opts.forceStreaming,
        wantOffset: inProgram,
        onDecl: (d) => {
          if (d.loc?.offset !== undefined && inProgram(d.loc.offset)) decoder.add(d);
        },
      });
      return done.then((dump) => ({ dump, a: decoder }));
    };
    const { dump, a } = await dumpAst(astFile).catch((e) => {
      if (astFile === iFile) throw e;
      return dumpAst(iFile);
    });
    const t2 = Date.now();

    const decoded = a.finish();

    // 3. layouts from the real compiler
    const layouts = new LayoutProbe(a.pendingTypes, decoded.records, preprocessed, unit);
    const layoutStart = Date.now();
    const layoutWork =
      !opts.skipLayout && a.pendingTypes.length > 0
        ? layouts.probeLayouts({
            clang,
            semantic: split.semantic,
            iFile,
            cwd,
            compiler: opts.layoutCompiler ?? process.env.DSU_LAYOUT_CC ?? 'cc',
            source: sourceAbs,
            preprocessFlags: split.preprocess.filter((f) => !/^-(O|g)/.test(f)),
          })
        : Promise.resolve(undefined);
    const stats: UnitAnalysis['stats'] = {
      preprocessedBytes: preprocessed.length,
      astBytes: dump.astBytes,
      astMode: dump.mode,
      keptDecls: dump.decls,
      preprocessMs: t1 - t0,
      astMs: t2 - t1,
      layoutMs: 0,
    };
    const recordLayout = (layoutCompiler: string | undefined) => {
      stats.layoutMs = Date.now() - layoutStart;
      stats.layoutCompiler = layoutCompiler;
      if (layouts.layoutMethod) stats.layoutMethod = layouts.layoutMethod;
      if (layouts.layoutErrors.length) stats.layoutFallbackReason = layouts.layoutErrors.join('\n');
    };
    const result: UnitAnalysis = {
      unit,
      preprocessed,
      regions,
      ...decoded,
      stats,
    };
    // a method, not data: kept out of equality checks and JSON
    Object.defineProperty(result, 'probeInstrumented', {
      enumerable: false,
      value: async (text: Buffer, at: string, roomy?: ReadonlySet<string>) => {
        const start = Date.now();
        stats.layoutMethod = await layouts.probeInstrumented(clang, split.semantic, text, at, roomy);
        stats.layoutCompiler = clang;
        stats.layoutMs = Date.now() - start;
      },
    });
    if (opts.deferLayout) {
      cleanupLater = true;
      result.layoutDone = layoutWork
        .then(recordLayout)
        .finally(() => rm(dir, { recursive: true, force: true }));
      return result;
    }
    recordLayout(await layoutWork);
    return result;
  } finally {
    if (!cleanupLater) await rm(dir, { recursive: true, force: true });
  }
}

function unitId(path: string): string {
  return 'u' + createHash('sha256').update(path).digest('hex').slice(0, 8);
}
