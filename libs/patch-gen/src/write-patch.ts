import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checkSafety } from '@dsu/analysis';
import { analyzeUnit, codegenFlags, splitFlags } from '@dsu/c-frontend';
import { applyEdits, locateRuntime, parseUpdatePointSpec, planData as planUnitData } from '@dsu/instrument';
import { computePatchId, type ManifestFunction, type PatchManifest } from '@dsu/patch-format';
import type { LoadedBuild } from './build-dir';
import { descriptorSource, framesSource, lazyChecksSource, unitTrailerSource } from './c-templates';
import { lazyStampName, transformerName, typeDescName, type DataSpec } from './data-patch';
import { planPatchUnit, type PatchUnitFunction } from './patch-unit';
import { readOnlyObject, type PatchContents } from './plan-contents';
import type { DataPlan } from './plan-data';
import type { FramesPlan } from './plan-frames';
import { expandUserCode, unitCompileOf } from './user-code';

/**
 * Phase 3 of `dsu patch`: writes the bundle of a planned patch — the patch units (the new
 * version's preprocessed units reduced to the patch's functions, plus the generated data code),
 * patch.c (the descriptor), units/index.json, patch.so (compiled here), manifest.json and the two
 * program models.
 */

const run = promisify(execFile);

/** Everything the phases decided about one patch: the writer's input. */
export interface PatchPlan {
  from: LoadedBuild;
  to: LoadedBuild;
  /** Makes the patch's generated names unique (`v` + the new build id's first 10 characters). */
  suffix: string;
  contents: PatchContents;
  data: DataPlan;
  frames: FramesPlan;
  /** patch.yaml: its `when` goes into the manifest. */
  spec?: DataSpec;
}

/** A patch unit of a bundle and the code generation flags of its original compile. */
interface BundleUnit {
  file: string;
  unit: string;
  flags: string[];
}

/**
 * Writes the bundle of `plan` into `outDir` (emptied first) with `clang` and returns its manifest
 * (patch id over the manifest and patch.so). The update points the safety analysis allows go into
 * the descriptor and the manifest.
 */
export async function writePatch(plan: PatchPlan, outDir: string, clang: string): Promise<PatchManifest> {
  const { from, to, suffix, contents, data } = plan;
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'units'), { recursive: true });
  const { units, functions: patchFns, frameEntries, notes: unitNotes } = await writePatchUnits(plan, outDir, clang);
  const notes = [...data.notes, ...plan.frames.notes, ...unitNotes];

  for (const f of patchFns) if (contents.signature.has(f.key)) f.change = 'signature';
  const fns: ManifestFunction[] = [
    ...patchFns.map((f) => ({
      key: f.key,
      change: f.change,
      newSymbol: f.symbol,
      reasons: contents.reasons.get(f.key) ?? [],
    })),
    ...contents.diff.removed.map((key) => ({ key, change: 'removed' as const, reasons: ['removed'] })),
  ];
  const facts: Omit<PatchManifest, 'patchId' | 'soSha256' | 'allowedUpdatePoints'> = {
    format: 1,
    program: to.info.program,
    from: { buildId: from.model.buildId, version: from.info.version },
    to: { buildId: to.model.buildId, version: to.info.version },
    functions: fns,
    types: contents.types.changed.map((c) => ({
      name: c.key,
      oldLayoutHash: c.old.layoutHash,
      newLayoutHash: c.next.layoutHash,
      oldSize: c.old.size,
      newSize: c.next.size,
      capacity: c.old.capacity,
      mode: contents.lazy.has(c.key) ? ('lazy' as const) : ('eager' as const),
      transformer: transformerName(c.key, suffix),
      fields: data.fieldPlans[c.key],
      instances: {
        heap: `tracked blocks of '${c.key}'`,
        globals: data.instances[c.key].ranges.map((r) => ({
          what: r.what,
          symbol: r.symbol,
          offset: r.offset,
          count: r.count,
        })),
        embeddedIn: data.instances[c.key].embeds,
      },
    })),
    globals: contents.globals,
    ...(notes.length ? { notes } : {}),
    ...(plan.spec?.when ? { when: plan.spec.when } : {}),
    ...(plan.frames.maps.length ? { frames: plan.frames.maps } : {}),
  };
  // The update points the safety analysis allows go into the descriptor: the runtime applies
  // only there (dsu check judges the whole bundle again and says why the others are denied).
  const allowedUpdatePoints = checkSafety({
    from: from.model,
    to: to.model,
    manifest: { ...facts, patchId: '', soSha256: '', allowedUpdatePoints: [] },
  }).updatePoints.allowed;
  writeFileSync(
    join(outDir, 'patch.c'),
    descriptorSource(
      {
        program: to.info.program,
        from: { version: from.info.version, buildId: from.model.buildId },
        to: { version: to.info.version, buildId: to.model.buildId },
      },
      patchFns,
      contents.diff.removed,
      contents.types.changed.map((c) => typeDescName(c.key, suffix)),
      data.stateTransformer,
      allowedUpdatePoints,
    ) +
      lazyChecksSource([...data.capacity.keys()], suffix) +
      framesSource(frameEntries, plan.frames.entries),
  );
  writeFileSync(join(outDir, 'units', 'index.json'), JSON.stringify(units, null, 2) + '\n');
  // The two program models travel with the bundle, so `dsu check` (and the checker service)
  // can analyze the patch without the build directories.
  mkdirSync(join(outDir, 'models'), { recursive: true });
  writeFileSync(join(outDir, 'models', 'from.json'), JSON.stringify(from.model));
  writeFileSync(join(outDir, 'models', 'to.json'), JSON.stringify(to.model));
  let soBytes: Buffer;
  try {
    soBytes = await compileBundle(outDir, clang);
  } catch (err) {
    // Everything but patch.so is written, so a hand edit of units/*.i and --rebuild finish it.
    writeFileSync(join(outDir, DRAFT_MANIFEST), JSON.stringify({ ...facts, allowedUpdatePoints }, null, 2) + '\n');
    throw new PatchCompileError((err as Error).message, outDir);
  }

  const body: Omit<PatchManifest, 'patchId'> = {
    ...facts,
    soSha256: createHash('sha256').update(soBytes).digest('hex'),
    allowedUpdatePoints,
  };
  const manifest: PatchManifest = { ...body, patchId: computePatchId(body, soBytes) };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** The manifest of a bundle whose code did not compile yet (no hash, no id): `--rebuild` completes it. */
export const DRAFT_MANIFEST = 'manifest.draft.json';

/** The generated patch code does not compile; the bundle directory is written for a hand fix. */
export class PatchCompileError extends Error {
  constructor(
    compilerMessage: string,
    readonly dir: string,
  ) {
    super(
      `${compilerMessage.trimEnd()}\n` +
        `the bundle is written to ${dir} without patch.so: correct the unit the compiler names (${dir}/units/*.i, or ${dir}/patch.c) ` +
        `and run \`dsu patch --rebuild ${dir}\` (please also report the generated code that did not compile)`,
    );
    this.name = 'PatchCompileError';
  }
}

/**
 * Writes units/<unit>.i for every unit of `plan.data.units` (in the new build's unit order):
 * the unit reduced by planPatchUnit, laid out with the running program's capacities, followed by
 * the unit's generated data code. Returns the units for index.json and the functions they define.
 */
async function writePatchUnits(
  plan: PatchPlan,
  outDir: string,
  clang: string,
): Promise<{ units: BundleUnit[]; functions: PatchUnitFunction[]; frameEntries: string[]; notes: string[] }> {
  const { to, suffix, contents, data } = plan;
  const { changed, added } = contents;
  const programFunctions = new Map<string, { unitId: string; isStatic: boolean }>();
  const unitIds = new Map<string, string>(to.model.units.map((u) => [u.path, u.id]));
  for (const f of Object.values(to.model.functions))
    programFunctions.set(f.key, { unitId: unitIds.get(f.unit) ?? '', isStatic: f.isStatic });
  const updatePoints = to.info.updatePoints.map(parseUpdatePointSpec);
  const addedVariables = new Set(
    contents.globals.filter((g) => g.change === 'added' || g.change === 'renamed').map((g) => g.key),
  );
  const changedTypeKeys = contents.types.changed.map((c) => c.key);
  const promotedStatics = new Set(plan.from.model.instrumentation.units.flatMap((u) => Object.keys(u.plan.promotedStatics ?? {})));

  const units: BundleUnit[] = [];
  const functions: PatchUnitFunction[] = [];
  const frameEntries: string[] = [];
  const notes: string[] = [];
  for (const unit of to.model.instrumentation.units.filter((u) => data.units.has(u.path))) {
    const unitModel = to.model.units.find((u) => u.path === unit.path);
    if (!unitModel) throw new Error(`the model of ${to.dir} has no unit '${unit.path}'`);
    const iPath = join(to.dir, to.info.sourceRoot, unit.preprocessed);
    const analysis = await analyzeUnit({
      source: iPath,
      flags: splitFlags(unitModel.flags).semantic,
      cwd: join(to.dir, to.info.sourceRoot),
      unitPath: unit.path,
      clang,
      skipLayout: true,
      frames: true,
    });
    const unitPlan = planPatchUnit(analysis, {
      changed,
      added,
      programFunctions,
      suffix,
      updatePoints,
      addedVariables,
      tables: contents.tables,
      promotedStatics,
      frameInitializers: plan.frames.initializers,
    });
    const inPatch = (k: string | undefined) => k !== undefined && (changed.has(k) || added.has(k));
    const layout = planUnitData(analysis, {
      capacity: data.layoutCapacity,
      keepLayout: data.keepLayout,
      selected: inPatch,
      typeTable: false,
      lazy: new Map([...data.capacity.keys()].map((k) => [k, { stamp: lazyStampName(k, suffix) }])),
    });
    for (const v of analysis.variables) {
      if (v.storage !== 'static' || !v.function || !inPatch(v.function) || promotedStatics.has(v.key)) continue;
      if (plan.from.model.globals[v.key] && !readOnlyObject(v.type ?? ''))
        notes.push(
          `'${v.key}': the running program keeps this static where it is declared (its declaration defines an enum, or a type shared by several variables), so the new code uses its own copy from its initializer; the running value is not carried (define the type apart from the variable to make it carried)`,
        );
    }
    const name = unit.path.replace(/[^A-Za-z0-9_.-]/g, '_');
    // patch.yaml code in the trailer gets the macros of the unit's source (user-code.ts).
    const trailer = await expandUserCode(
      unitTrailerSource(data.unitCode.get(unit.path) ?? [], changedTypeKeys, suffix),
      unitCompileOf(join(to.dir, to.info.sourceRoot), unit.object),
      clang,
    );
    if (trailer.note) notes.push(`${unit.path}: ${trailer.note}`);
    writeFileSync(
      join(outDir, 'units', `${name}.i`),
      Buffer.concat([applyEdits(analysis.preprocessed, [...unitPlan.edits, ...layout.edits]), Buffer.from(trailer.text)]),
    );
    units.push({ file: `units/${name}.i`, unit: unit.path, flags: codegenFlags(unitModel.flags) });
    functions.push(...unitPlan.functions);
    // An unmapped function's new code stays unlisted: the runtime then waits until it is not active.
    frameEntries.push(...unitPlan.frames.functions.filter((f) => !plan.frames.unmapped.has(f.key)).map((f) => f.entry));
  }
  return { units, functions, frameEntries, notes };
}

/** Compiles a bundle's patch units (units/index.json) and descriptor into patch.so; returns its bytes. */
export async function compileBundle(dir: string, clang: string): Promise<Buffer> {
  const units = JSON.parse(readFileSync(join(dir, 'units', 'index.json'), 'utf8')) as BundleUnit[];
  const work = join(dir, '.work');
  mkdirSync(work, { recursive: true });
  try {
    const objects: string[] = [];
    for (const [i, u] of units.entries()) {
      const obj = join(work, `unit${i}.o`);
      await compile(
        clang,
        [...u.flags, '-fPIC', '-Wno-unused-function', '-Wno-gnu-line-marker', '-Wno-unknown-warning-option', '-c', '-x', 'cpp-output', join(dir, u.file), '-o', obj],
        u.file,
      );
      objects.push(obj);
    }
    const descObj = join(work, 'patch.o');
    await compile(
      clang,
      ['-O2', '-fPIC', '-I', locateRuntime().includeDir, '-c', join(dir, 'patch.c'), '-o', descObj],
      'patch.c',
    );
    await compile(clang, ['-shared', '-o', join(dir, 'patch.so'), ...objects, descObj], 'patch.so');
    return readFileSync(join(dir, 'patch.so'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function compile(clang: string, args: string[], what: string): Promise<void> {
  try {
    await run(clang, args, { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`compiling ${what} of the patch failed:\n${e.stderr || e.message}`);
  }
}
