// Build fixture programs (test/fixtures/<program>/<version>) and run them as real server processes.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const FIXTURES_ROOT = path.resolve(__dirname, '../../../fixtures');

/** The C compiler the suites build fixtures with: `DSU_E2E_CC` (e.g. dsu-cc), else `cc`. */
export function fixtureCompiler(): string {
  return process.env.DSU_E2E_CC || 'cc';
}

export interface BuildOptions {
  /** C compiler passed as `make CC=...` (default: fixtureCompiler()). */
  cc?: string;
  /** Passed as `make CFLAGS=...` when set; otherwise the Makefile default (-O2 -g -Wall). */
  cflags?: string;
  /** Directory the version is copied into (as `<outDir>/<program>-<version>`) and built in. */
  outDir: string;
  /** Extra environment for make. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export interface BuiltFixture {
  program: string;
  version: string;
  dir: string;
  binary: string;
  /** make's combined stdout + stderr. */
  log: string;
}

export function fixtureSourceDir(program: string, version: string): string {
  return path.join(FIXTURES_ROOT, program, version);
}

export function listVersions(program: string): string[] {
  return fs
    .readdirSync(path.join(FIXTURES_ROOT, program), { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^v\d+$/.test(d.name))
    .map((d) => d.name)
    .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
}

/** A fresh temporary directory for build outputs; remove it with removeDir. */
export function makeTempDir(prefix = 'dsu-e2e-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Copy the version's sources (no build products) into outDir and run make there. */
export async function buildFixture(
  program: string,
  version: string,
  opts: BuildOptions,
): Promise<BuiltFixture> {
  const src = fixtureSourceDir(program, version);
  if (!fs.existsSync(path.join(src, 'Makefile'))) throw new Error(`no fixture at ${src}`);
  const dir = path.join(opts.outDir, `${program}-${version}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const name of fs.readdirSync(src)) {
    if (name === program || name.endsWith('.o')) continue;
    fs.cpSync(path.join(src, name), path.join(dir, name), { recursive: true });
  }
  const args = [`CC=${opts.cc ?? fixtureCompiler()}`];
  if (opts.cflags !== undefined) args.push(`CFLAGS=${opts.cflags}`);
  const log = await new Promise<string>((resolve, reject) => {
    execFile(
      'make',
      ['-C', dir, ...args],
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const out = `${stdout}${stderr}`;
        if (err) reject(new Error(`make ${program}/${version} failed: ${err.message}\n${out}`));
        else resolve(out);
      },
    );
  });
  const binary = path.join(dir, program);
  if (!fs.existsSync(binary)) throw new Error(`make ${program}/${version} produced no ${binary}\n${log}`);
  return { program, version, dir, binary, log };
}

export interface StartOptions {
  /** Port argument (default 0: the server picks a free one). */
  port?: number;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when SIGTERM was not enough and stop() had to SIGKILL. */
  killed: boolean;
}

export interface RunningServer {
  port: number;
  pid: number;
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Whether the process has exited. */
  exited(): boolean;
  /** Send `signal` (default SIGTERM), wait for exit; SIGKILL after stopTimeoutMs. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<ExitInfo>;
}

const running = new Set<RunningServer>();

/** Spawn a fixture server and wait for its `listening <port>` line. */
export function startServer(binary: string, opts: StartOptions = {}): Promise<RunningServer> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 5_000;
  const child = spawn(binary, [String(opts.port ?? 0), ...(opts.args ?? [])], {
    cwd: opts.cwd ?? path.dirname(binary),
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    err += d;
  });

  return new Promise<RunningServer>((resolve, reject) => {
    let settled = false;
    const settleFail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!exitInfo) child.kill('SIGKILL');
      reject(new Error(`${binary}: ${why}\nstdout: ${out}\nstderr: ${err}`));
    };
    const timer = setTimeout(
      () => settleFail(`no "listening <port>" within ${readyTimeoutMs} ms`),
      readyTimeoutMs,
    );
    child.once('error', (e) => settleFail(`spawn failed: ${e.message}`));
    void exitPromise.then((e) => settleFail(`exited before ready (code ${e.code}, signal ${e.signal})`));
    child.stdout!.on('data', (d: string) => {
      out += d;
      if (settled) return;
      const m = /^listening (\d+)$/m.exec(out);
      if (!m) return;
      settled = true;
      clearTimeout(timer);
      let stopping: Promise<ExitInfo> | undefined;
      const server: RunningServer = {
        port: Number(m[1]),
        pid: child.pid!,
        child,
        stdout: () => out,
        stderr: () => err,
        exited: () => exitInfo !== undefined,
        stop(signal: NodeJS.Signals = 'SIGTERM') {
          if (!stopping) {
            stopping = (async () => {
              let killed = false;
              if (!exitInfo) {
                child.kill(signal);
                const t = new Promise<'timeout'>((r) =>
                  setTimeout(() => r('timeout'), stopTimeoutMs).unref(),
                );
                if ((await Promise.race([exitPromise, t])) === 'timeout') {
                  killed = true;
                  child.kill('SIGKILL');
                }
              }
              const e = await exitPromise;
              running.delete(server);
              return { code: e.code, signal: e.signal, killed };
            })();
          }
          return stopping;
        },
      };
      running.add(server);
      resolve(server);
    });
  });
}

/** Stop every server started by this module that is still running (for afterAll hooks). */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}
