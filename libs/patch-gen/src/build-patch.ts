import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checkSafety } from '@dsu/analysis';
import { analyzeUnit, codegenFlags, findClang, splitFlags } from '@dsu/c-frontend';
import { applyEdits, locateRuntime, parseUpdatePointSpec, planData, typeIdLiteral } from '@dsu/instrument';
import { computePatchId, type ManifestFunction, type PatchManifest } from '@dsu/patch-format';
import { loadBuild, type LoadedBuild } from './build-dir';
import { diffFunctions } from './model-diff';
import { planPatchUnit, type PatchUnitFunction } from './patch-unit';
import {
  changedNames,
  DATA_DESC_PRELUDE,
  diffTypes,
  findInstances,
  transformerName,
  transformerSource,
  typeDescName,
  typeDescriptorSource,
  lazyStampName,
  arrayOf,
  intInfo,
  C_INT,
  type TypeChange,
  type DataSpec,
  type FieldPlan,
  type InstanceEmbed,
  type InstanceRange,
} from './data-patch';

const run = promisify(execFile);

export class UnsupportedChangeError extends Error {
  constructor(readonly reasons: string[]) {
    super(`the new version changes things a code-only patch cannot carry:\n  - ${reasons.join('\n  - ')}`);
    this.name = 'UnsupportedChangeError';
  }
}

export interface BuildPatchResult {
  manifest: PatchManifest;
  dir: string;
}

const CHANGE_CODE = {
  body: 'DSU_CHANGE_BODY',
  added: 'DSU_CHANGE_ADDED',
  removed: 'DSU_CHANGE_REMOVED',
  signature: 'DSU_CHANGE_SIGNATURE',
} as const;

export interface BuildPatchOptions {
  /** The user's spec (patch.yaml, parsed): renames, defaults, custom transformers. */
  spec?: DataSpec;
  /** How instances are transformed (default eager); patch.yaml may set `mode` per type. */
  transform?: 'eager' | 'lazy';
}

/**
 * Types transformed lazily: `--transform lazy`, or `mode: lazy` per type in patch.yaml. A lazy
 * type nested in an eager one (or the reverse) is refused: the eager transformer would run on
 * instances whose member is still in an older layout.
 */
function lazyTypes(
  changed: readonly TypeChange[],
  names: ReadonlyMap<string, string>,
  opts: BuildPatchOptions,
  unsupported: string[],
): Set<string> {
  const modeOf = (k: string) => opts.spec?.types?.[k]?.mode ?? opts.transform ?? 'eager';
  for (const c of changed) {
    const m = modeOf(c.key);
    if (m !== 'eager' && m !== 'lazy')
      unsupported.push(`patch.yaml gives type '${c.key}' mode '${String(m)}'; use eager or lazy`);
  }
  const lazy = new Set(changed.filter((c) => modeOf(c.key) === 'lazy').map((c) => c.key));
  for (const c of changed) {
    for (const f of c.next.fields) {
      const inner = names.get(arrayOf(f.type).base);
      if (inner && inner !== c.key && lazy.has(inner) !== lazy.has(c.key)) {
        unsupported.push(
          `type '${c.key}' (${modeOf(c.key)}) embeds '${inner}' (${modeOf(inner)}); nested changed types must use the same transformation mode`,
        );
      }
    }
  }
  return lazy;
}

/**
 * Every type with room gets tag checks in the patch's code (ABI.md §10): the runtime sets each
 * stamp at commit to the type's current tag, or 0 when no lazy patch ever changed the type (the
 * checks then pass), and refuses a later patch that does not list a type with lazy history.
 */
function lazyChecksSource(keys: string[], suffix: string): string {
  if (keys.length === 0) return '';
  return [
    "/* Version tags the patch's code checks before using an instance (libs/runtime/ABI.md section 10);",
    ' * set by the runtime at commit: the current tag of a lazily transformed type, else 0. */',
    ...keys.map((k) => `unsigned int ${lazyStampName(k, suffix)} = 0u;`),
    'static const struct dsu_patch_lazy_check lazy_checks[] = {',
    ...keys.map((k) => `    { ${JSON.stringify(k)}, ${typeIdLiteral(k)}, &${lazyStampName(k, suffix)} },`),
    '};',
    `const struct dsu_patch_lazy_checks dsu_patch_lazy_checks = { DSU_DATA_ABI_VERSION, ${keys.length}u, lazy_checks };`,
    '',
  ].join('\n');
}

/** Global changes: what the patch does with each, and the changes it cannot carry. */
function globalChanges(
  from: LoadedBuild,
  to: LoadedBuild,
  changedTypes: ReadonlyMap<string, string>,
  spec: DataSpec | undefined,
) {
  const reasons: string[] = [];
  const entries: {
    key: string;
    change: 'added' | 'removed' | 'type' | 'renamed' | 'initializer';
    from?: string;
    note?: string;
  }[] = [];
  const a = from.model;
  const b = to.model;
  const renamedFrom = new Map(Object.entries(spec?.globalRenames ?? {}));
  for (const [k, g] of Object.entries(b.globals)) {
    const old = a.globals[k];
    if (!old) {
      const was = renamedFrom.get(k);
      const prev = was ? a.globals[was] : undefined;
      if (was && !prev)
        reasons.push(
          `patch.yaml renames global '${was}' to '${k}', but the running version has no global '${was}'`,
        );
      else if (was && prev && prev.type !== g.type && !(intInfo(a, prev.type) && intInfo(b, g.type)))
        reasons.push(
          `patch.yaml renames global '${was}' to '${k}', but its type changes from '${prev.type}' to '${g.type}'; only integer types are converted`,
        );
      else if (was && prev && prev.type !== g.type)
        entries.push({
          key: k,
          change: 'renamed',
          from: was,
          note: `defined by the patch; the running value is converted from '${prev.type}' to '${g.type}' at update time (a value that does not fit refuses the update)`,
        });
      else if (was)
        entries.push({
          key: k,
          change: 'renamed',
          from: was,
          note: 'defined by the patch; the running value is copied at update time',
        });
      else entries.push({ key: k, change: 'added', note: 'defined by the patch with its new initializer' });
    } else if (old.type !== g.type) {
      reasons.push(
        `global '${k}' changes type from '${old.type}' to '${g.type}'; its storage in the running program cannot change size or type. ` +
          `Give it a new name in the new version and list the rename in patch.yaml (globalRenames: { <new>: '${k}' }): ` +
          `the patch defines the new global and carries the running value (integers are converted)`,
      );
    } else {
      if (changedTypes.has(arrayOf(g.type).base)) {
        entries.push({
          key: k,
          change: 'type',
          note: `instances of '${changedTypes.get(arrayOf(g.type).base)}' transformed`,
        });
      }
      if ((old.initHash ?? '') !== (g.initHash ?? '')) {
        entries.push({
          key: k,
          change: 'initializer',
          note: 'its initializer changed; the running value is kept (set it in the state transformer if needed)',
        });
      }
    }
  }
  for (const k of Object.keys(a.globals)) {
    if (!(k in b.globals) && ![...renamedFrom.values()].includes(k))
      entries.push({ key: k, change: 'removed', note: 'stays in the program, unused by new code' });
  }
  return { reasons, entries };
}

/**
 * `dsu patch`: diffs two builds and writes a patch bundle — patch units (the new version's
 * preprocessed units reduced to the changed and added functions), patch.c (the descriptor the
 * runtime reads), patch.so and manifest.json.
 */
export async function buildPatch(
  fromDir: string,
  toDir: string,
  outDir: string,
  opts: BuildPatchOptions = {},
): Promise<BuildPatchResult> {
  const from = loadBuild(fromDir);
  const to = loadBuild(toDir);
  if (from.info.program !== to.info.program) {
    throw new Error(
      `${fromDir} builds '${from.info.program}' but ${toDir} builds '${to.info.program}'; a patch moves one program between its versions`,
    );
  }
  const diff = diffFunctions(from.model, to.model);
  const types = diffTypes(from.model, to.model);
  const changedTypes = changedNames(to.model, types.changed);
  const oldChangedNames = changedNames(from.model, types.changed);
  const globals = globalChanges(from, to, changedTypes, opts.spec);
  const unsupported = [...types.refusals, ...globals.reasons];
  const lazy = lazyTypes(types.changed, changedTypes, opts, unsupported);
  // Why each function is in the patch (manifest `reasons`).
  const why = new Map<string, string[]>();
  const because = (k: string, r: string) => why.set(k, [...(why.get(k) ?? []), r]);
  for (const k of diff.body) because(k, 'body changed');
  for (const k of diff.added) because(k, 'added');
  for (const k of diff.signature) {
    because(
      k,
      `signature changed (${from.model.functions[k].signature} -> ${to.model.functions[k].signature})`,
    );
    if (from.model.functions[k].addressTaken || to.model.functions[k].addressTaken) {
      unsupported.push(
        `function '${k}' changes its signature and its address is taken: stored pointers would call it with the old signature`,
      );
    }
    for (const f of Object.values(to.model.functions)) {
      if (f.calls.includes(k) && from.model.functions[f.key])
        because(f.key, `calls '${k}', whose signature changed`);
    }
  }
  // Ripple: code compiled against the old layout must not touch the new one.
  for (const f of Object.values(to.model.functions)) {
    if (!from.model.functions[f.key]) continue;
    const used = f.typesUsed.filter((t) => changedTypes.has(t));
    const oldUsed = (from.model.functions[f.key].typesUsed ?? []).filter((t) => oldChangedNames.has(t));
    for (const t of new Set([...used, ...oldUsed]))
      because(
        f.key,
        `uses '${changedTypes.get(t) ?? oldChangedNames.get(t)}' concretely (its layout changed)`,
      );
  }
  // Inlining: the running build let some callers call (and inline) a function directly; when
  // that function is replaced, so are they, and their own inlining callers, transitively.
  const inlinedInto = new Map<string, string[]>();
  for (const u of from.model.instrumentation.units) {
    for (const [caller, callee] of u.plan.inlinable ?? [])
      inlinedInto.set(callee, [...(inlinedInto.get(callee) ?? []), caller]);
  }
  const pending = [...why.keys(), ...diff.removed];
  for (let k = pending.shift(); k !== undefined; k = pending.shift()) {
    for (const caller of inlinedInto.get(k) ?? []) {
      if (!to.model.functions[caller] || !from.model.functions[caller]) continue;
      const first = !why.has(caller);
      because(caller, `may have inlined '${k}', which the patch replaces`);
      if (first) pending.push(caller);
    }
  }
  if (unsupported.length > 0) throw new UnsupportedChangeError(unsupported);
  if (
    diff.body.length +
      diff.added.length +
      diff.removed.length +
      diff.signature.length +
      types.changed.length ===
    0
  ) {
    throw new Error(
      `${fromDir} and ${toDir} have the same code (no function, signature or struct layout changed, none was added or removed); there is nothing to patch`,
    );
  }

  const clang = findClang().path;
  const suffix = 'v' + to.model.buildId.slice(0, 10);
  const added = new Set(diff.added);
  const changed = new Set([...why.keys()].filter((k) => !added.has(k)));
  const signature = new Set(diff.signature);
  const addedVariables = new Set(
    globals.entries.filter((g) => g.change === 'added' || g.change === 'renamed').map((g) => g.key),
  );
  const renames = globals.entries.filter((g) => g.change === 'renamed');
  // Capacities of the running program: every patch unit lays its structs out with them.
  const capacity = new Map<string, number>();
  for (const t of Object.values(from.model.types)) if (t.capacity > t.size) capacity.set(t.key, t.capacity);
  // Types the running program keeps in their C layout (opted out, used as raw bytes, not
  // updatable) must not get room in the patch's code either: its sizeof, array strides and
  // embedded offsets would disagree with the running program's. Types new in this version are
  // laid out as the new build laid them out.
  const keepLayout = new Set<string>();
  const layoutCapacity = new Map(capacity);
  for (const t of Object.values(from.model.types)) if (!capacity.has(t.key)) keepLayout.add(t.key);
  for (const t of Object.values(to.model.types)) {
    if (from.model.types[t.key]) continue;
    if (t.capacity > t.size) layoutCapacity.set(t.key, t.capacity);
    else keepLayout.add(t.key);
  }
  // Transformers and type descriptors go into the unit that defines the new layout.
  const typeUnit = new Map(types.changed.map((c) => [c.key, c.next.unit ?? '']));
  const typeCode = new Map<string, string[]>();
  const fieldPlans: Record<string, FieldPlan[]> = {};
  const instances: Record<string, { ranges: InstanceRange[]; embeds: InstanceEmbed[] }> = {};
  const notes = [...types.notes];
  for (const c of types.changed) {
    const x = transformerSource(
      c,
      from.model,
      to.model,
      changedTypes,
      suffix,
      opts.spec?.types?.[c.key],
      lazy,
    );
    fieldPlans[c.key] = x.fields;
    // A lazy transformer runs after the update is applied: a check that fails then cannot refuse
    // anything, so the process would have to stop. Conversions that can fail stay eager.
    const checked = lazy.has(c.key) ? x.fields.filter((f) => /checked/.test(f.how)) : [];
    if (checked.length > 0)
      throw new UnsupportedChangeError([
        `type '${c.key}' is transformed lazily, but ${checked.map((f) => `'${f.field}' (${f.how})`).join(', ')} can fail, and a lazy transformer fails only after the update is applied; ` +
          `transform this type eagerly (patch.yaml: types: { '${c.key}': { mode: eager } }), or give the field a default or custom code in patch.yaml`,
      ]);
    const inst = findInstances(c.key, from.model, oldChangedNames);
    instances[c.key] = inst;
    notes.push(...inst.notes);
    const u = typeUnit.get(c.key) ?? '';
    typeCode.set(u, [
      ...(typeCode.get(u) ?? []),
      x.code,
      typeDescriptorSource(c, suffix, inst, lazy.has(c.key) ? 'lazy' : 'eager'),
    ]);
  }
  const programFunctions = new Map<string, { unitId: string; isStatic: boolean }>();
  const unitIds = new Map<string, string>(to.model.units.map((u) => [u.path, u.id]));
  for (const f of Object.values(to.model.functions))
    programFunctions.set(f.key, { unitId: unitIds.get(f.unit) ?? '', isStatic: f.isStatic });
  const updatePoints = to.info.updatePoints.map(parseUpdatePointSpec);

  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'units'), { recursive: true });
  const touched = new Set([...changed, ...added].map((k) => to.model.functions[k].unit));
  for (const u of typeUnit.values()) touched.add(u);
  // The spec's state transformer runs once, after every instance is transformed, in the first
  // patch unit (where the new version's declarations are in scope).
  // Renamed globals are carried by the same function, in the unit that defines the new name.
  for (const r of renames) touched.add(to.model.globals[r.key].unit);
  const predicate = opts.spec?.when?.predicate;
  if (predicate !== undefined) {
    // compiled where main() is (its unit's globals are in scope), as the runtime's condition
    const unit = to.model.functions.main?.unit ?? [...touched].sort()[0] ?? to.model.units[0]?.path;
    if (unit === undefined)
      throw new UnsupportedChangeError([
        'patch.yaml gives a when-condition, but the program has no unit to compile it in',
      ]);
    touched.add(unit);
    typeCode.set(unit, [...(typeCode.get(unit) ?? []), whenConditionSource(predicate)]);
  }
  const stateName = opts.spec?.stateTransformer || renames.length ? `__dsu_state_xf__${suffix}` : undefined;
  const stateUnit = stateName
    ? renames.length
      ? to.model.globals[renames[0].key].unit
      : [...touched].sort()[0]
    : undefined;
  const promoted: Record<string, string> = {};
  for (const u of from.model.instrumentation.units) Object.assign(promoted, u.plan.promotedStatics ?? {});
  const carried = renames.map((r, i) => {
    const old = from.model.globals[r.from as string];
    const symbol = old.linkage === 'external' ? old.name : promoted[old.key];
    if (!symbol)
      throw new UnsupportedChangeError([
        `global '${old.key}' (renamed to '${r.key}') has no exported name in the running program; its value cannot be carried`,
      ]);
    const name = to.model.globals[r.key].name;
    const next = to.model.globals[r.key];
    if (next.type !== old.type) {
      // integers only (checked in globalChanges): read the old width, assign, check it survived
      const oi = intInfo(from.model, old.type) as { size: number; signed: boolean };
      const ot = C_INT(oi);
      return {
        decl: `extern ${ot} __dsu_renamed_${i} __asm__(${JSON.stringify(symbol)}); /* '${old.key}': ${old.type} */`,
        copy: [
          `  { ${ot} v = __dsu_renamed_${i}; /* ${r.key}: value of '${old.key}', ${old.type} -> ${next.type} */`,
          `    ${name} = v;`,
          `    if (${name} != v || ((${name} < 0) != (v < 0))) {`,
          `      __builtin_snprintf(err, errlen, "global '${r.key}': running value %lld of '${old.key}' does not fit '${next.type}'", (long long)v);`,
          `      return -1;`,
          `    }`,
          `  }`,
        ].join('\n'),
      };
    }
    return {
      decl: `extern unsigned char __dsu_renamed_${i}[] __asm__(${JSON.stringify(symbol)});`,
      copy: `  __builtin_memcpy(&${name}, __dsu_renamed_${i}, sizeof ${name}); /* ${r.key}: value of '${old.key}' */`,
    };
  });
  if (stateName && stateUnit !== undefined) {
    typeCode.set(stateUnit, [
      ...(typeCode.get(stateUnit) ?? []),
      [
        ...carried.map((c) => c.decl),
        '/* State transformer: runs once at update time, after the instances are transformed',
        ' * (renamed globals get their running values; then the body from patch.yaml). */',
        `int ${stateName}(char *err, __SIZE_TYPE__ errlen) {`,
        '  (void)err; (void)errlen;',
        ...carried.map((c) => c.copy),
        (opts.spec?.stateTransformer ?? '').trimEnd(),
        '  return 0;',
        '}',
        '',
      ].join('\n'),
    ]);
  }
  const units: BundleUnit[] = [];
  const patchFns: PatchUnitFunction[] = [];
  for (const unit of to.model.instrumentation.units.filter((u) => touched.has(u.path))) {
    const unitModel = to.model.units.find((u) => u.path === unit.path);
    if (!unitModel) throw new Error(`the model of ${toDir} has no unit '${unit.path}'`);
    const iPath = join(to.dir, to.info.sourceRoot, unit.preprocessed);
    const analysis = await analyzeUnit({
      source: iPath,
      flags: splitFlags(unitModel.flags).semantic,
      cwd: join(to.dir, to.info.sourceRoot),
      unitPath: unit.path,
      clang,
      skipLayout: true,
    });
    const plan = planPatchUnit(analysis, {
      changed,
      added,
      programFunctions,
      suffix,
      updatePoints,
      addedVariables,
    });
    const inPatch = (k: string | undefined) => k !== undefined && (changed.has(k) || added.has(k));
    const data = planData(analysis, {
      capacity: layoutCapacity,
      keepLayout,
      selected: inPatch,
      typeTable: false,
      lazy: new Map([...capacity.keys()].map((k) => [k, { stamp: lazyStampName(k, suffix) }])),
    });
    const name = unit.path.replace(/[^A-Za-z0-9_.-]/g, '_');
    const patchUnit = join(outDir, 'units', `${name}.i`);
    const extra = typeCode.get(unit.path) ?? [];
    const transformers = extra.length
      ? [
          '',
          '/* ---- State transformers, generated by `dsu patch` (edit freely, then `dsu patch --rebuild`). ---- */',
          DATA_DESC_PRELUDE,
          ...types.changed.map(
            (c) => `int ${transformerName(c.key, suffix)}(void *, const void *, char *, __SIZE_TYPE__);`,
          ),
          ...extra,
        ].join('\n')
      : '';
    writeFileSync(
      patchUnit,
      Buffer.concat([
        applyEdits(analysis.preprocessed, [...plan.edits, ...data.edits]),
        Buffer.from(transformers),
      ]),
    );
    units.push({ file: `units/${name}.i`, unit: unit.path, flags: codegenFlags(unitModel.flags) });
    patchFns.push(...plan.functions);
  }

  for (const f of patchFns) if (signature.has(f.key)) f.change = 'signature';
  const fns: ManifestFunction[] = [
    ...patchFns.map((f) => ({
      key: f.key,
      change: f.change,
      newSymbol: f.symbol,
      reasons: why.get(f.key) ?? [],
    })),
    ...diff.removed.map((key) => ({ key, change: 'removed' as const, reasons: ['removed'] })),
  ];
  const facts: Omit<PatchManifest, 'patchId' | 'soSha256' | 'allowedUpdatePoints'> = {
    format: 1,
    program: to.info.program,
    from: { buildId: from.model.buildId, version: from.info.version },
    to: { buildId: to.model.buildId, version: to.info.version },
    functions: fns,
    types: types.changed.map((c) => ({
      name: c.key,
      oldLayoutHash: c.old.layoutHash,
      newLayoutHash: c.next.layoutHash,
      oldSize: c.old.size,
      newSize: c.next.size,
      capacity: c.old.capacity,
      mode: lazy.has(c.key) ? ('lazy' as const) : ('eager' as const),
      transformer: transformerName(c.key, suffix),
      fields: fieldPlans[c.key],
      instances: {
        heap: `tracked blocks of '${c.key}'`,
        globals: instances[c.key].ranges.map((r) => ({
          what: r.what,
          symbol: r.symbol,
          offset: r.offset,
          count: r.count,
        })),
        embeddedIn: instances[c.key].embeds,
      },
    })),
    globals: globals.entries,
    ...(notes.length ? { notes } : {}),
    ...(opts.spec?.when ? { when: opts.spec.when } : {}),
  };
  // The update points the safety analysis allows go into the descriptor: the runtime applies
  // only there (dsu check judges the whole bundle again and says why the others are denied).
  const allowedUpdatePoints = checkSafety({
    from: from.model,
    to: to.model,
    manifest: { ...facts, patchId: '', soSha256: '', allowedUpdatePoints: [] },
  }).updatePoints.allowed;
  const patchC = join(outDir, 'patch.c');
  writeFileSync(
    patchC,
    descriptorSource(
      from,
      to,
      patchFns,
      diff.removed,
      types.changed.map((c) => typeDescName(c.key, suffix)),
      stateName,
      allowedUpdatePoints,
    ) + lazyChecksSource([...capacity.keys()], suffix),
  );
  writeFileSync(join(outDir, 'units', 'index.json'), JSON.stringify(units, null, 2) + '\n');
  const soBytes = await compileBundle(outDir, clang);

  const body: Omit<PatchManifest, 'patchId'> = {
    ...facts,
    soSha256: createHash('sha256').update(soBytes).digest('hex'),
    allowedUpdatePoints,
  };
  const manifest: PatchManifest = { ...body, patchId: computePatchId(body, soBytes) };
  writeFileSync(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  // The two program models travel with the bundle, so `dsu check` (and the checker service)
  // can analyze the patch without the build directories.
  mkdirSync(join(outDir, 'models'), { recursive: true });
  writeFileSync(join(outDir, 'models', 'from.json'), JSON.stringify(from.model));
  writeFileSync(join(outDir, 'models', 'to.json'), JSON.stringify(to.model));
  return { manifest, dir: outDir };
}

/** A patch unit of a bundle and the code generation flags of its original compile. */
interface BundleUnit {
  file: string;
  unit: string;
  flags: string[];
}

/** Compiles a bundle's patch units and descriptor into patch.so; returns its bytes. */
async function compileBundle(dir: string, clang: string): Promise<Buffer> {
  const units = JSON.parse(readFileSync(join(dir, 'units', 'index.json'), 'utf8')) as BundleUnit[];
  const work = join(dir, '.work');
  mkdirSync(work, { recursive: true });
  try {
    const objects: string[] = [];
    for (const [i, u] of units.entries()) {
      const obj = join(work, `unit${i}.o`);
      await compile(
        clang,
        [...u.flags, '-fPIC', '-Wno-unused-function', '-c', '-x', 'cpp-output', join(dir, u.file), '-o', obj],
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

/**
 * `dsu patch --rebuild <patch-dir>`: after hand edits of units/*.i or patch.c, compiles the bundle
 * again and gives it a new patch id (an earlier verdict no longer applies and is removed).
 */
export async function rebuildPatch(dir: string): Promise<PatchManifest> {
  const old = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as PatchManifest;
  const soBytes = await compileBundle(dir, findClang().path);
  const { patchId: _old, ...body } = { ...old, soSha256: createHash('sha256').update(soBytes).digest('hex') };
  const manifest: PatchManifest = { ...body, patchId: computePatchId(body, soBytes) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  rmSync(join(dir, 'verdict.json'), { force: true });
  return manifest;
}

async function compile(clang: string, args: string[], what: string): Promise<void> {
  try {
    await run(clang, args, { maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`compiling ${what} of the patch failed:\n${e.stderr || e.message}`);
  }
}

/**
 * The when-condition of patch.yaml as code of the patch (ABI.md section 7): the runtime calls
 * `dsu_patch_when` with every thread stopped and applies only when it returns non-zero.
 */
function whenConditionSource(predicate: string): string {
  return [
    '',
    '/* ---- When-condition from patch.yaml: the update happens only when it is true. ---- */',
    `__attribute__((visibility("default"))) const char dsu_patch_when_text[] = ${JSON.stringify(predicate)};`,
    `__attribute__((visibility("default"))) int dsu_patch_when(void) { return (${predicate}) != 0; }`,
    '',
  ].join('\n');
}

/** The point name a descriptor lists when the analysis allows none (no thread can be there). */
export const NO_SAFE_POINT = '(no update point is safe for this patch)';

/** patch.c: the descriptor the runtime reads with dlsym (libs/runtime/ABI.md §7). */
function descriptorSource(
  from: LoadedBuild,
  to: LoadedBuild,
  fns: PatchUnitFunction[],
  removed: string[],
  typeDescs: string[],
  stateTransformer: string | undefined,
  allowedPoints: string[],
): string {
  const c = (s: string) => JSON.stringify(s);
  // An empty list means "any point" to the runtime: a patch no point is safe for names none.
  const points = allowedPoints.length ? allowedPoints : [NO_SAFE_POINT];
  const entries = [
    ...fns.map(
      (f) =>
        `    { ${c(f.key)}, ${CHANGE_CODE[f.change]}, (void *)&${f.symbol}, ${f.slot ? `&${f.slot}` : 'NULL'} },`,
    ),
    ...removed.map((k) => `    { ${c(k)}, ${CHANGE_CODE.removed}, NULL, NULL },`),
  ];
  return [
    `/* Patch for ${to.info.program}: ${from.info.version} (${from.model.buildId}) -> ${to.info.version} (${to.model.buildId}).`,
    " * Generated by `dsu patch`. The new function bodies are in units/*.i (the new version's",
    ' * preprocessed units, reduced to the changed and added functions); this file is the',
    ' * descriptor the runtime reads (libs/runtime/ABI.md section 7). */',
    '#include <dsu.h>',
    '',
    ...fns.map((f) => `extern void ${f.symbol}(void);`),
    ...fns.filter((f) => f.slot).map((f) => `extern void *${f.slot};`),
    '',
    '/* The update points the safety analysis allows (dsu check explains the others). */',
    `static const char *const points[] = { ${points.map(c).join(', ')} };`,
    '',
    'static const struct dsu_patch_fn fns[] = {',
    ...entries,
    '};',
    `const struct dsu_patch_desc dsu_patch = { DSU_ABI_VERSION, ${c(from.model.buildId)}, ${c(to.model.buildId)}, ${c(from.info.version)}, ${c(to.info.version)},`,
    `    ${entries.length}u, fns, ${points.length}u, points };`,
    '',
    ...(typeDescs.length || stateTransformer
      ? [
          '/* Data: one entry per changed type, defined next to its transformer in units/*.i (ABI.md section 10). */',
          ...typeDescs.map((d) => `extern const struct dsu_patch_type ${d};`),
          ...(stateTransformer ? [`extern int ${stateTransformer}(char *err, size_t errlen);`] : []),
          `static const struct dsu_patch_type *const types[] = { ${typeDescs.length ? typeDescs.map((d) => `&${d}`).join(', ') : 'NULL'} };`,
          `const struct dsu_patch_data dsu_patch_data = { DSU_DATA_ABI_VERSION, ${typeDescs.length}u, types, ${stateTransformer ?? 'NULL'} };`,
          '',
        ]
      : []),
  ].join('\n');
}

export { loadBuild };
