import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import {
  analyzeUnit,
  buildProgramModel,
  codegenFlags,
  dependencyFlags,
  findClang,
  summarizeUnit,
  type UnitSummary,
} from '@dsu/c-frontend';
import { classifyInvocation } from './compiler-invocation';
import { parseCapacities, parseSlopSpec, planData, type DataPlan } from './data-plan';
import { applyEdits } from './edits';
import { locateRuntime } from './runtime-location';
import { parseUpdatePointSpec, planUnit, type UnitPlan } from './unit-plan';

/** What dsu-cc writes next to every object it instruments (`<obj>.dsu.json`). */
export interface ObjectSidecar {
  format: 1;
  summary: UnitSummary;
  plan: Omit<UnitPlan, 'edits'>;
  /** The unit's preprocessed source (`<obj>.dsu.i`), which patch generation compiles against. */
  preprocessed: string;
  /** How the unit was compiled, so the link step can compile it again (see `keepRawLayouts`). */
  compile?: { source: string; flags: string[]; cwd: string };
  /** sha256 of the object: how the link step recognizes it inside a static library. */
  objectSha256?: string;
}

/**
 * Every object dsu-cc compiled in a build, by content (`<sha256> <path>` lines in
 * `<root>/.dsu-objects`): archive members only have their base name (`greet.c.o`, CMake keeps the
 * object in `CMakeFiles/greet.dir/`), so the link step finds their sidecars by hash. Appends of one
 * short line are atomic, so parallel compile steps can share the file.
 */
const objectIndexPath = (ctx: DsuCcContext) =>
  join(ctx.env.DSU_SOURCE_ROOT ? resolve(ctx.env.DSU_SOURCE_ROOT) : ctx.cwd, '.dsu-objects');

export interface DsuCcContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  /** Where the compilers' own output goes; default: this process's stdout/stderr (the compile server relays it to its client). */
  output?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

class CommandFailed extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function exec(cmd: string, args: readonly string[], ctx: DsuCcContext): Promise<void> {
  return new Promise((res, rej) => {
    const relay = ctx.output;
    const child = spawn(cmd, args, {
      cwd: ctx.cwd,
      env: ctx.env,
      stdio: relay ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    if (relay) {
      child.stdout?.on('data', (c: Buffer) => relay('stdout', c));
      child.stderr?.on('data', (c: Buffer) => relay('stderr', c));
    }
    child.on('error', (err) => rej(new CommandFailed(127, `cannot run '${cmd}': ${err.message}`)));
    child.on('close', (code, signal) =>
      code === 0
        ? res()
        : rej(
            new CommandFailed(
              code ?? 1,
              `${cmd} ${signal ? `was killed by ${signal}` : `exited with ${code}`}`,
            ),
          ),
    );
  });
}

const realCc = (env: NodeJS.ProcessEnv) => env.DSU_CC ?? 'cc';

/** The object a `-c` compile of `source` writes. */
function objectFor(source: string, output: string | undefined, single: boolean): string {
  if (output && single) return output;
  return basename(source, extname(source)) + '.o';
}

function updatePointsFromEnv(env: NodeJS.ProcessEnv) {
  return (env.DSU_UPDATE_POINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(parseUpdatePointSpec);
}

/**
 * DSU_CC_TIMING=1: one JSON line per compiled unit on stderr, `{"dsuCcTiming":…}`, with the
 * milliseconds since the unit started at which each step finished (steps overlap: the layout
 * probe and the compile run while other work goes on) and the process CPU time of dsu-cc itself.
 */
function unitTimer(ctx: DsuCcContext, unit: string) {
  const on = ctx.env.DSU_CC_TIMING === '1';
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const marks: Record<string, number> = {};
  return {
    mark(step: string) {
      if (on) marks[step] = Math.round(performance.now() - t0);
    },
    done(extra: Record<string, unknown>) {
      if (!on) return;
      const cpu = process.cpuUsage(cpu0);
      ctx.log(
        JSON.stringify({
          dsuCcTiming: unit,
          totalMs: Math.round(performance.now() - t0),
          marks,
          ...extra,
          // dsu-cc's own CPU (node: analysis, planning, edits); clang runs are child processes
          nodeCpuMs: Math.round((cpu.user + cpu.system) / 1000),
        }),
      );
    },
  };
}

/** Instruments and compiles one C unit to `object`; writes `<object>.dsu.json` and `<object>.dsu.i`. */
export async function compileUnit(
  source: string,
  object: string,
  flags: string[],
  ctx: DsuCcContext,
): Promise<ObjectSidecar> {
  const timing = unitTimer(ctx, source);
  const clang = findClang(ctx.env).path;
  const root = ctx.env.DSU_SOURCE_ROOT ? resolve(ctx.env.DSU_SOURCE_ROOT) : ctx.cwd;
  const abs = resolve(ctx.cwd, source);
  const unitPath = relative(root, abs).startsWith('..') ? abs : relative(root, abs);
  // The dependency file (-MD/-MMD) is written by the preprocessing run itself.
  const deps = dependencyFlags(flags);
  const withTarget =
    deps.length === 0 || deps.includes('-MT') || deps.includes('-MQ') ? deps : [...deps, '-MT', object];
  const depFlags =
    withTarget.length === 0 || withTarget.includes('-MF')
      ? withTarget
      : [...withTarget, '-MF', object.replace(/\.o$/, '') + '.d'];
  const analysis = await analyzeUnit({
    source,
    flags,
    cwd: ctx.cwd,
    unitPath,
    clang,
    layoutCompiler: clang,
    preprocessFlags: depFlags,
    // No probe of the plain unit: the layouts come from one probe of the instrumented unit below.
    skipLayout: true,
    // DSU_CC_WHOLE_AST=1: the JSON AST of the whole unit (unused header prototypes not blanked)
    keepUnusedPrototypes: ctx.env.DSU_CC_WHOLE_AST === '1',
    // DSU_NO_FRAMES=1: no capture and resume code (functions active at an update stay refused).
    frames: ctx.env.DSU_NO_FRAMES !== '1',
  });
  timing.mark('analyze');
  const plan = planUnit(analysis, updatePointsFromEnv(ctx.env), { frames: ctx.env.DSU_NO_FRAMES !== '1' });
  // Room for growth and allocation tracking (DSU_SLOP / DSU_CAPACITY come from `dsu build`).
  // DSU_NO_DATA=1 (`dsu build --no-data`): code updates only — no room, no type table, no
  // allocation tracking; every struct keeps its C layout.
  const data: Pick<DataPlan, 'edits' | 'roomy' | 'kept'> =
    ctx.env.DSU_NO_DATA === '1'
      ? {
          edits: [],
          roomy: {},
          kept: Object.fromEntries(
            analysis.types.map((t) => [t.key, 'data updates are off in this build (dsu build --no-data)']),
          ),
        }
      : planData(analysis, {
          slop: parseSlopSpec(ctx.env.DSU_SLOP),
          capacity: parseCapacities(ctx.env.DSU_CAPACITY),
          keepLayout: new Set((ctx.env.DSU_KEEP_LAYOUT ?? '').split(';').filter(Boolean)),
        });
  plan.edits.push(...data.edits);
  for (const t of analysis.types) {
    if (t.updatable && !data.roomy[t.key] && t.kind !== 'typedef') {
      t.updatable = false;
      t.notUpdatableReason = data.kept[t.key] ?? 'no room was reserved';
    }
  }
  timing.mark('plan');
  const objAbs = resolve(ctx.cwd, object);
  const work = mkdtempSync(join(tmpdir(), 'dsu-cc-'));
  try {
    const instrumented = join(work, basename(source, extname(source)) + '.dsu.i');
    const text = applyEdits(analysis.preprocessed, plan.edits);
    writeFileSync(instrumented, text);
    if (ctx.env.DSU_KEEP_INSTRUMENTED === '1') writeFileSync(objAbs + '.inst.i', text);
    timing.mark('edits');
    try {
      const compiled = exec(
        clang,
        [
          ...codegenFlags(flags),
          '-Wno-unused-command-line-argument',
          // The unit is preprocessed output: under -Wpedantic every GNU line marker in it would
          // warn, thousands per unit, none of them about the program.
          '-Wno-gnu-line-marker',
          // The program's flags were chosen for the compiler its configure found (gcc:
          // -Wlogical-op, tinyproxy); clang warns once per unit that it does not know them.
          '-Wno-unknown-warning-option',
          // The room dsu-cc appends is a field no initializer in the source names: every
          // positional initializer of a type with room would warn under -Wextra (-Werror builds
          // would fail where the native build passes).
          ...(Object.keys(data.roomy).length > 0 ? ['-Wno-missing-field-initializers'] : []),
          // The unit is compiled from a fresh temporary directory: keep its name out of the
          // debug info, so the same sources give the same object (and the same build id).
          `-ffile-prefix-map=${work}=.`,
          '-c',
          '-x',
          'cpp-output',
          instrumented,
          '-o',
          objAbs,
        ],
        ctx,
      );
      compiled.then(() => timing.mark('compile')).catch(() => undefined); // awaited below
      // Sizes, offsets and bit-fields as the instrumented program lays them out (room included),
      // learned while the unit compiles. Only room changes layouts, so without room these are
      // the plain unit's layouts too.
      const probed = analysis.probeInstrumented?.(text, ctx.cwd, new Set(Object.keys(data.roomy)));
      probed?.then(() => timing.mark('layoutProbe')).catch(() => undefined); // awaited below
      await compiled;
      await probed;
    } catch (err) {
      const kept = objAbs + '.inst.i';
      writeFileSync(kept, text);
      throw new CommandFailed(
        (err as CommandFailed).code ?? 1,
        `compiling the instrumented ${unitPath} failed (the program compiles natively?); the instrumented unit is kept at ${kept} — please report it`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  writeFileSync(objAbs + '.dsu.i', analysis.preprocessed);
  const { edits: _edits, ...planSummary } = plan;
  const sidecar: ObjectSidecar = {
    format: 1,
    summary: summarizeUnit(analysis),
    plan: planSummary,
    preprocessed: basename(objAbs) + '.dsu.i',
    compile: { source: abs, flags, cwd: ctx.cwd },
    objectSha256: createHash('sha256').update(readFileSync(objAbs)).digest('hex'),
  };
  writeFileSync(objAbs + '.dsu.json', JSON.stringify(sidecar));
  appendFileSync(objectIndexPath(ctx), `${sidecar.objectSha256} ${objAbs}\n`);
  timing.mark('sidecar');
  timing.done({
    preprocessMs: analysis.stats.preprocessMs,
    astMs: analysis.stats.astMs,
    layoutMs: analysis.stats.layoutMs,
    layoutMethod: analysis.stats.layoutMethod,
  });
  return sidecar;
}

/**
 * Objects of a static library whose units dsu-cc compiled, so they are part of the program model
 * too: next to the archive (`ar rcs libx.a x.o y.o`), else by content through the build's object
 * index (members elsewhere, as CMake builds them).
 */
function archiveMembers(archive: string, ctx: DsuCcContext): string[] {
  let members: string[];
  try {
    members = execFileSync('ar', ['t', archive], { encoding: 'utf8' })
      .split('\n')
      .filter((m) => m.endsWith('.o'));
  } catch {
    return []; // not an archive ar can read: linked as is, its code is simply not updatable
  }
  let index: Map<string, string> | undefined;
  const found: string[] = [];
  for (const m of members) {
    const beside = join(dirname(archive), m);
    if (existsSync(beside + '.dsu.json')) {
      found.push(beside);
      continue;
    }
    index ??= readObjectIndex(ctx);
    try {
      const sha = createHash('sha256')
        .update(execFileSync('ar', ['p', archive, m], { maxBuffer: 1 << 30 }))
        .digest('hex');
      const obj = index.get(sha);
      if (obj && existsSync(obj + '.dsu.json')) found.push(obj);
    } catch {
      // a member ar cannot extract: its code is not updatable, like a foreign object
    }
  }
  return found;
}

function readObjectIndex(ctx: DsuCcContext): Map<string, string> {
  const index = new Map<string, string>();
  try {
    for (const line of readFileSync(objectIndexPath(ctx), 'utf8').split('\n')) {
      const sp = line.indexOf(' ');
      if (sp > 0) index.set(line.slice(0, sp), line.slice(sp + 1)); // later lines win (rebuilds)
    }
  } catch {
    // no index: nothing compiled by dsu-cc under this root
  }
  return index;
}

/**
 * A unit only sees its own raw uses of whole instances (`fwrite(&rec, sizeof rec, …)`), but the
 * room of a struct must be the same in every unit. When the merged model finds such a type with
 * room, the units that gave it room are compiled again with the type's C layout kept
 * (DSU_KEEP_LAYOUT), so the program reads and writes exactly the bytes the native build would.
 * Returns whether anything was recompiled.
 */
async function keepRawLayouts(
  sidecars: { object: string; sidecar: ObjectSidecar }[],
  ctx: DsuCcContext,
): Promise<boolean> {
  const model = buildProgramModel(
    'link-check',
    '',
    sidecars.map((s) => s.sidecar.summary),
  );
  const keep = Object.values(model.types)
    .filter((t) => t.capacity > t.size && t.notUpdatableReason?.startsWith('whole instances'))
    .map((t) => t.key);
  if (keep.length === 0) return false;
  const already = (ctx.env.DSU_KEEP_LAYOUT ?? '').split(';').filter(Boolean);
  const all = [...new Set([...already, ...keep])];
  for (const s of sidecars) {
    const c = s.sidecar.compile;
    if (!s.sidecar.summary.types.some((t) => keep.includes(t.key) && t.capacity > t.size)) continue;
    if (!c)
      throw new Error(
        `${s.object} gives room to ${keep.join(', ')}, whose instances are used as raw bytes; recompile it with this dsu-cc`,
      );
    ctx.log(
      `dsu-cc: ${keep.join(', ')}: whole instances are used as raw bytes; compiling ${s.sidecar.summary.unit.path} again with the C layout kept`,
    );
    await compileUnit(c.source, s.object, c.flags, {
      ...ctx,
      cwd: c.cwd,
      env: { ...ctx.env, DSU_KEEP_LAYOUT: all.join(';') },
    });
  }
  return true;
}

/** Links objects with libdsu, exports every symbol, embeds the build id and writes `<exe>.dsu.json`. */
export async function linkProgram(args: string[], output: string, ctx: DsuCcContext): Promise<void> {
  const rt = locateRuntime(ctx.env);
  const exe = resolve(ctx.cwd, output);
  const objects = args.filter((a) => !a.startsWith('-') && a.endsWith('.o')).map((o) => resolve(ctx.cwd, o));
  const archived = args
    .filter((a) => !a.startsWith('-') && a.endsWith('.a'))
    .flatMap((a) => archiveMembers(resolve(ctx.cwd, a), ctx));
  const readSidecars = () =>
    [...objects, ...archived]
      .filter((o) => existsSync(o + '.dsu.json'))
      .map((o) => ({
        object: o,
        sidecar: JSON.parse(readFileSync(o + '.dsu.json', 'utf8')) as ObjectSidecar,
      }));
  let sidecars = readSidecars();
  if (await keepRawLayouts(sidecars, ctx)) sidecars = readSidecars();
  const hash = createHash('sha256');
  for (const o of objects) hash.update(readFileSync(o));
  hash.update(JSON.stringify(args));
  const buildId = hash.digest('hex').slice(0, 32);
  const program = ctx.env.DSU_PROGRAM ?? basename(exe);
  const work = mkdtempSync(join(tmpdir(), 'dsu-link-'));
  try {
    const info = join(work, 'dsu_build_info.c');
    writeFileSync(
      info,
      `const char dsu_build_id[] = ${JSON.stringify(buildId)};\nconst char dsu_program_name[] = ${JSON.stringify(program)};\n`,
    );
    const infoObj = join(work, 'dsu_build_info.o');
    await exec(realCc(ctx.env), ['-c', info, '-o', infoObj], ctx);
    await exec(
      realCc(ctx.env),
      [
        ...args,
        infoObj,
        '-rdynamic',
        '-Wl,-u,dsu__link_anchor',
        '-Wl,--whole-archive',
        rt.library,
        '-Wl,--no-whole-archive',
        '-ldl',
        '-pthread',
      ],
      ctx,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const model = buildProgramModel(
    program,
    buildId,
    sidecars.map((s) => s.sidecar.summary),
  );
  // Paths relative to the source root, so a copied build directory stays usable.
  const root = ctx.env.DSU_SOURCE_ROOT ? resolve(ctx.env.DSU_SOURCE_ROOT) : dirname(exe);
  const units = sidecars.map((s) => ({
    path: s.sidecar.summary.unit.path,
    object: relative(root, s.object),
    preprocessed: relative(root, join(dirname(s.object), s.sidecar.preprocessed)),
    plan: s.sidecar.plan,
  }));
  const transactions = (ctx.env.DSU_TRANSACTIONS ?? '').split(',').filter(Boolean);
  writeFileSync(
    exe + '.dsu.json',
    JSON.stringify(
      { ...model, ...(transactions.length ? { transactions } : {}), instrumentation: { units } },
      null,
      2,
    ),
  );
}

/**
 * dsu-cc: a drop-in C compiler. Compile steps of C units are instrumented (clang preprocesses,
 * analyzes and compiles them, so all three agree on the unit); link steps add libdsu,
 * `-rdynamic` and the program model; everything else runs the real compiler (`DSU_CC`, default
 * `cc`) unchanged. Returns the exit code.
 */
export async function runDsuCc(argv: string[], ctx: DsuCcContext): Promise<number> {
  const inv = classifyInvocation(argv);
  try {
    if (inv.kind === 'passthrough') {
      await exec(realCc(ctx.env), argv, ctx);
      return 0;
    }
    const rt = inv.kind === 'link' ? undefined : locateRuntime(ctx.env);
    const flags = argv.filter((a) => !inv.sources.includes(a));
    const compileFlags = rt
      ? [...flags.filter((f, i) => f !== '-o' && flags[i - 1] !== '-o'), '-I', rt.includeDir]
      : [];
    if (inv.kind === 'compile') {
      for (const src of inv.sources)
        await compileUnit(src, objectFor(src, inv.output, inv.sources.length === 1), compileFlags, ctx);
      return 0;
    }
    const output = inv.output ?? 'a.out';
    let linkArgs = argv;
    if (inv.kind === 'compile-and-link') {
      const objDir = join(dirname(resolve(ctx.cwd, output)), `.${basename(output)}.dsu-objects`);
      mkdirSync(objDir, { recursive: true });
      const objects = new Map<string, string>();
      for (const src of inv.sources) {
        const obj = join(objDir, basename(src, extname(src)) + '.o');
        await compileUnit(src, obj, ['-c', ...compileFlags], ctx);
        objects.set(src, obj);
      }
      // Link flags only: compile options are harmless to the driver, sources become their objects.
      linkArgs = argv.map((a) => objects.get(a) ?? a);
    }
    await linkProgram(linkArgs, output, ctx);
    return 0;
  } catch (err) {
    ctx.log(`dsu-cc: ${(err as Error).message}`);
    return err instanceof CommandFailed ? err.code || 1 : 1;
  }
}
