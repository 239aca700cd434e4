import { compileClientPath, startCompileServer } from './compile-server';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  copyFileSync,
  lstatSync,
  realpathSync,
} from 'node:fs';
import { basename, isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { findClang } from '@dsu/c-frontend';
import { parseUpdatePointSpec } from './unit-plan';
import { parseSlopSpec } from './data-plan';
import { chownTree, SANDBOX_UID, sandboxDropsRoot, type SandboxOptions, useSandbox } from './build-sandbox';
import { runBuild } from './run-build';

export interface BuildVersionOptions {
  /** Build command run in the copied sources; default `make CC=<dsu-cc>`. */
  command?: string;
  /** Executable, relative to the source root; default: the one executable the build produced. */
  bin?: string;
  updatePoints?: string[];
  /** Functions whose every call is a transaction (version consistency; recorded in the model). */
  transactions?: string[];
  version?: string;
  program?: string;
  env?: NodeJS.ProcessEnv;
  /** Receives the build's output lines (progress). */
  onOutput?: (line: string) => void;
  /** Kill the build after this long (default 15 minutes). */
  timeoutMs?: number;
  /** Kill the build when it writes more than this much output (default: no limit). */
  maxOutputBytes?: number;
  /** Slop per struct type: `struct conn=128,struct wire=none` (none keeps the C layout). */
  slop?: string;
  /** false: code updates only (no room, no allocation tracking; `dsu build --no-data`). */
  dataUpdates?: boolean;
  /** false: no capture/resume code (`dsu build --no-frames`): active functions are never replaced. */
  frames?: boolean;
  /**
   * A `dsu build` output directory of an earlier version: every struct it gave room keeps the same
   * capacity here, so patches from this build apply to processes that started with that one.
   */
  layoutFrom?: string;
  /**
   * Isolation of the build (docs/build-sandbox.md); default `off`: a user building their own
   * code keeps their rights. The compiler service passes its DSU_BUILD_SANDBOX mode.
   */
  sandbox?: SandboxOptions;
}

export interface BuiltVersion {
  program: string;
  version: string;
  buildId: string;
  executable: string;
  model: string;
  outDir: string;
  /** Options the build could not honour, each saying why and what to do (`--slop` for a type kept as it is). */
  warnings?: string[];
}

/** Absolute path of the dsu-cc command of this installation. */
export function dsuCcPath(): string {
  return resolve(__dirname, '..', 'bin', 'dsu-cc.js');
}

function findExecutables(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && !e.name.startsWith('.')) out.push(...findExecutables(p));
    else if (e.isFile() && existsSync(p + '.dsu.json') && (statSync(p).mode & 0o111) !== 0) out.push(p);
  }
  return out;
}

/**
 * Every `--update-point FUNC:...` must name a function of the program (key `name`, or
 * `unit::name` for a static): a misspelt one would otherwise build a program with no update point
 * there and no word said. The unit planner already refuses a function it cannot place a point in.
 */
function checkUpdatePointFunctions(points: string[], functionKeys: string[]): void {
  for (const p of points) {
    const fn = parseUpdatePointSpec(p).function;
    if (functionKeys.some((k) => k === fn || k.endsWith(`::${fn}`))) continue;
    throw new Error(
      `--update-point ${p}: the program has no function '${fn}' (check the spelling; a static function is named without its file)`,
    );
  }
}

/**
 * `dsu build`: copies the sources to `<out>/src`, runs the program's own build there with dsu-cc
 * as the C compiler, and collects the executable, its program model and `build.json` in `<out>`.
 * The copy keeps the user's tree clean and makes the build directory self-contained, which is
 * what `dsu patch` needs later (the preprocessed units live next to the objects).
 */
export async function buildVersion(
  srcDir: string,
  outDir: string,
  opts: BuildVersionOptions = {},
): Promise<BuiltVersion> {
  const src = resolve(srcDir);
  const out = resolve(outDir);
  if (!existsSync(src) || !statSync(src).isDirectory())
    throw new Error(`source directory ${srcDir} does not exist`);
  if (out.startsWith(src + '/') || out === src)
    throw new Error(`--out ${outDir} must not be inside the source directory ${srcDir}`);
  for (const p of opts.updatePoints ?? []) parseUpdatePointSpec(p);
  for (const t of opts.transactions ?? [])
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(t)) throw new Error(`--transaction '${t}' must be a function name`);
  parseSlopSpec(opts.slop); // fail early on a malformed --slop
  if (opts.bin !== undefined) checkBin(opts.bin);
  const capacities = opts.layoutFrom ? capacitiesOf(opts.layoutFrom) : '';
  // Throws the reason (what to install) when the sandbox is required and unavailable.
  const sandboxed = await useSandbox(opts.sandbox?.mode ?? 'off');
  rmSync(out, { recursive: true, force: true });
  const root = join(out, 'src');
  mkdirSync(root, { recursive: true });
  // Sandboxed, links are copied as they are (relative, inside the tree): an absolute rewrite
  // would point at the original tree, which the sandbox does not show.
  cpSync(src, root, { recursive: true, verbatimSymlinks: sandboxed });

  // One compile server for the whole build; CC is its C client (node's start-up per step would
  // dominate the build time). Without the compiled client, every step runs dsu-cc.js.
  const client = compileClientPath();
  const server = client && !sandboxed ? await startCompileServer() : undefined;
  const dsuCc = client ?? dsuCcPath();
  const command = opts.command ?? `make CC=${dsuCc}`;
  const base = opts.env ?? process.env;
  const env = {
    ...base,
    // Resolved once here, so each dsu-cc run checks one clang instead of searching for it.
    DSU_CLANG: findClang(base).path,
    CC: dsuCc,
    DSU_SOURCE_ROOT: root,
    DSU_UPDATE_POINTS: (opts.updatePoints ?? []).join(','),
    DSU_TRANSACTIONS: (opts.transactions ?? []).join(','),
    DSU_SLOP: opts.slop ?? '',
    ...(opts.dataUpdates === false ? { DSU_NO_DATA: '1' } : {}),
    ...(opts.frames === false ? { DSU_NO_FRAMES: '1' } : {}),
    DSU_CAPACITY: capacities,
    ...(opts.program ? { DSU_PROGRAM: opts.program } : {}),
    ...(server ? { DSU_CC_SOCKET: server.socketPath } : {}),
  };
  // As root, the sandbox runs as nobody: it gets the output tree, and the caller gets it back.
  const owner =
    sandboxed && sandboxDropsRoot()
      ? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }
      : undefined;
  if (owner) chownTree(out, SANDBOX_UID, SANDBOX_UID);
  try {
    await runBuild({
      command,
      cwd: root,
      env,
      onOutput: opts.onOutput ?? (() => undefined),
      timeoutMs: opts.timeoutMs ?? 15 * 60_000,
      maxOutputBytes: opts.maxOutputBytes,
      sandbox: sandboxed
        ? {
            workDir: out,
            hide: opts.sandbox?.hide ?? [],
            serveWith: client ? [process.execPath, dsuCcPath(), '--serve', '--'] : undefined,
          }
        : undefined,
    });
  } finally {
    await server?.close();
    if (owner) chownTree(out, owner.uid, owner.gid);
  }

  let exe: string;
  if (opts.bin) {
    exe = join(root, opts.bin);
    if (!existsSync(exe + '.dsu.json')) {
      throw new Error(
        `the build did not produce ${opts.bin} with dsu-cc (no ${opts.bin}.dsu.json); check --bin and that the build uses $(CC)`,
      );
    }
  } else {
    const found = findExecutables(root);
    if (found.length !== 1) {
      throw new Error(
        found.length === 0
          ? 'the build produced no executable linked by dsu-cc; does the build use $(CC) (or accept --cmd)?'
          : `the build produced several executables (${found.map((f) => relative(root, f)).join(', ')}); choose one with --bin`,
      );
    }
    exe = found[0];
  }
  // The build wrote this tree: read only regular files inside it, never through a link it made.
  checkOutput(root, exe);
  checkOutput(root, exe + '.dsu.json');
  const name = basename(exe);
  copyFileSync(exe, join(out, name));
  const modelText = readFileSync(exe + '.dsu.json', 'utf8');
  writeFileSync(join(out, `${name}.dsu.json`), modelText);
  const model = JSON.parse(modelText) as {
    program: string;
    buildId: string;
    types?: Record<string, SlopTarget>;
    functions?: Record<string, unknown>;
  };
  checkUpdatePointFunctions(opts.updatePoints ?? [], Object.keys(model.functions ?? {}));
  const warnings = slopWarnings(opts.slop, model.types ?? {});
  const built: BuiltVersion = {
    program: opts.program ?? model.program,
    version: opts.version ?? basename(src),
    buildId: model.buildId,
    executable: name,
    model: `${name}.dsu.json`,
    outDir: out,
    ...(warnings.length ? { warnings } : {}),
  };
  writeFileSync(
    join(out, 'build.json'),
    JSON.stringify(
      {
        format: 1,
        program: built.program,
        version: built.version,
        buildId: built.buildId,
        executable: built.executable,
        model: built.model,
        sourceRoot: 'src',
        updatePoints: opts.updatePoints ?? [],
        ...(opts.transactions?.length ? { transactions: opts.transactions } : {}),
        ...(opts.slop ? { slop: opts.slop } : {}),
        ...(opts.dataUpdates === false ? { dataUpdates: false } : {}),
        ...(opts.layoutFrom ? { layoutFrom: resolve(opts.layoutFrom) } : {}),
      },
      null,
      2,
    ) + '\n',
  );
  return built;
}

type SlopTarget = { key: string; size?: number; capacity?: number; updatable?: boolean; notUpdatableReason?: string };

/**
 * What `--slop` asked for and did not get: a type the program does not define, or one that keeps
 * its C layout (with the reason), so room requested for it is not silently missing at patch time.
 */
export function slopWarnings(spec: string | undefined, types: Record<string, SlopTarget>): string[] {
  const out: string[] = [];
  for (const [key, slop] of parseSlopSpec(spec)) {
    if (slop === 'none') continue;
    const t = types[key];
    if (!t) out.push(`--slop '${key}=${slop}' is ignored: the program defines no type '${key}' (spell it as the model does: 'struct name' or a typedef name)`);
    else if (t.updatable === false)
      out.push(`--slop '${key}=${slop}' is ignored: ${key} keeps its C layout (${t.notUpdatableReason ?? 'not updatable'}), so it gets no room and a patch cannot change its fields`);
    else if (t.capacity !== undefined && t.size !== undefined && t.capacity <= t.size)
      out.push(`--slop '${key}=${slop}' is ignored: ${key} was compiled with its C layout kept (whole instances are used as raw bytes or outside the program; see the build output)`);
  }
  return out;
}

/** `struct conn=96;...`: capacities of the types an earlier build gave room (for DSU_CAPACITY). */
function capacitiesOf(buildDir: string): string {
  const infoPath = join(resolve(buildDir), 'build.json');
  if (!existsSync(infoPath))
    throw new Error(`--layout-from ${buildDir} is not a dsu build directory (no build.json)`);
  const info = JSON.parse(readFileSync(infoPath, 'utf8')) as { model: string };
  const model = JSON.parse(readFileSync(join(resolve(buildDir), info.model), 'utf8')) as {
    types: Record<string, { key: string; size: number; capacity: number }>;
  };
  return Object.values(model.types)
    .filter((t) => t.capacity > t.size)
    .map((t) => `${t.key}=${t.capacity}`)
    .join(';');
}

/** `--bin` names a file inside the source tree. */
function checkBin(bin: string): void {
  if (isAbsolute(bin) || normalize(bin).split('/').includes('..'))
    throw new Error(`--bin ${bin} must be a path inside the source tree, relative to it`);
}

/** Throws unless `file` is a regular file inside `root` (not a link, not outside). */
function checkOutput(root: string, file: string): void {
  const st = lstatSync(file);
  if (!st.isFile() || !realpathSync(file).startsWith(realpathSync(root) + '/'))
    throw new Error(
      `the build output ${relative(root, file)} is not a regular file inside the build directory (a link?); the build must write the executable and its model itself`,
    );
}
