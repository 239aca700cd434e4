import { spawn } from 'node:child_process';
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
} from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { findClang } from '@dsu/c-frontend';
import { parseUpdatePointSpec } from './unit-plan';
import { parseSlopSpec } from './data-plan';

export interface BuildVersionOptions {
  /** Build command run in the copied sources; default `make CC=<dsu-cc>`. */
  command?: string;
  /** Executable, relative to the source root; default: the one executable the build produced. */
  bin?: string;
  updatePoints?: string[];
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
  /**
   * A `dsu build` output directory of an earlier version: every struct it gave room keeps the same
   * capacity here, so patches from this build apply to processes that started with that one.
   */
  layoutFrom?: string;
}

export interface BuiltVersion {
  program: string;
  version: string;
  buildId: string;
  executable: string;
  model: string;
  outDir: string;
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
  parseSlopSpec(opts.slop); // fail early on a malformed --slop
  const capacities = opts.layoutFrom ? capacitiesOf(opts.layoutFrom) : '';
  rmSync(out, { recursive: true, force: true });
  const root = join(out, 'src');
  mkdirSync(root, { recursive: true });
  cpSync(src, root, { recursive: true });

  // One compile server for the whole build; CC is its C client (node's start-up per step would
  // dominate the build time). Without the compiled client, every step runs dsu-cc.js.
  const client = compileClientPath();
  const server = client ? await startCompileServer() : undefined;
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
    DSU_SLOP: opts.slop ?? '',
    ...(opts.dataUpdates === false ? { DSU_NO_DATA: '1' } : {}),
    DSU_CAPACITY: capacities,
    ...(opts.program ? { DSU_PROGRAM: opts.program } : {}),
    ...(server ? { DSU_CC_SOCKET: server.socketPath } : {}),
  };
  try {
    await runBuild(
      command,
      root,
      env,
      opts.onOutput ?? (() => undefined),
      opts.timeoutMs ?? 15 * 60_000,
      opts.maxOutputBytes,
    );
  } finally {
    await server?.close();
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
  const name = basename(exe);
  copyFileSync(exe, join(out, name));
  const modelText = readFileSync(exe + '.dsu.json', 'utf8');
  writeFileSync(join(out, `${name}.dsu.json`), modelText);
  const model = JSON.parse(modelText) as { program: string; buildId: string };
  const built: BuiltVersion = {
    program: opts.program ?? model.program,
    version: opts.version ?? basename(src),
    buildId: model.buildId,
    executable: name,
    model: `${name}.dsu.json`,
    outDir: out,
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

function runBuild(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  onOutput: (line: string) => void,
  timeoutMs: number,
  maxOutputBytes = Infinity,
): Promise<void> {
  return new Promise((res, rej) => {
    // Its own process group, so a time or output limit stops make *and* the compilers it started.
    const child = spawn('/bin/sh', ['-c', command], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const tail: string[] = [];
    let bytes = 0;
    let stopped: string | undefined;
    const stop = (why: string) => {
      if (stopped) return;
      stopped = why;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is already gone
      }
    };
    const take = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxOutputBytes) stop(`it wrote more than ${maxOutputBytes} bytes of output`);
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        onOutput(line);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => stop(`it ran longer than ${timeoutMs} ms`), timeoutMs);
    child.on('error', (err) => rej(new Error(`cannot run the build command '${command}': ${err.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (stopped)
        rej(
          new Error(
            `the build command '${command}' was stopped because ${stopped}; last output:\n${tail.join('\n')}`,
          ),
        );
      else if (code === 0) res();
      else
        rej(
          new Error(
            `the build command '${command}' ${signal ? `was killed (${signal})` : `failed with exit code ${code}`}; last output:\n${tail.join('\n')}`,
          ),
        );
    });
  });
}
