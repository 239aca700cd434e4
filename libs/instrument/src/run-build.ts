import { spawn } from 'node:child_process';
import { sandboxCommand } from './build-sandbox';

/** One run of a program's build command, with its limits, optionally inside the sandbox. */
export interface BuildRun {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  onOutput: (line: string) => void;
  timeoutMs: number;
  maxOutputBytes?: number;
  /**
   * Run inside the sandbox: `workDir` is the only writable place, `hide` stays invisible; with
   * `serveWith`, the compile server (dsu-cc --serve) runs inside too, so clang only ever sees what
   * the sandbox shows (a unit cannot `#include` a key from outside).
   */
  sandbox?: { workDir: string; hide: string[]; serveWith?: string[] };
}

// What a build may see of the caller's environment inside the sandbox: the build's own settings,
// never credentials (DSU_TOKEN, DATABASE_URL, KAFKA_SASL_*, ...).
const KEEP = /^(PATH|LANG|LC_[A-Z]+|TZ|SOURCE_DATE_EPOCH|CC|CFLAGS|CPPFLAGS|LDFLAGS|MAKEFLAGS)$/;
const SECRET = /TOKEN|SECRET|PASS|KEY|CREDENTIAL|AUTH/;

function sandboxEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = { HOME: '/tmp', TMPDIR: '/tmp' };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (KEEP.test(k) || (k.startsWith('DSU_') && !SECRET.test(k))) out[k] = v;
  }
  out.PATH ??= '/usr/local/bin:/usr/bin:/bin';
  return out;
}

/**
 * Runs the build command (`/bin/sh -c`) in its own process group, so a time or output limit stops
 * make *and* everything it started; resolves on exit 0, rejects with the reason and the last
 * output lines otherwise.
 */
export function runBuild(run: BuildRun): Promise<void> {
  const { command, onOutput, timeoutMs } = run;
  const maxOutputBytes = run.maxOutputBytes ?? Infinity;
  const shell = ['/bin/sh', '-c', command];
  const spec = run.sandbox
    ? sandboxCommand(
        run.sandbox.workDir,
        run.cwd,
        [...(run.sandbox.serveWith ?? []), ...shell],
        sandboxEnv(run.env),
        run.sandbox.hide,
      )
    : { file: shell[0], args: shell.slice(1) };
  return new Promise((res, rej) => {
    const child = spawn(spec.file, spec.args, {
      cwd: run.cwd,
      env: run.sandbox ? { PATH: run.env.PATH ?? '/usr/bin:/bin' } : run.env,
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
    const line = (text: string) => {
      if (!text) return;
      tail.push(text);
      if (tail.length > 40) tail.shift();
      onOutput(text);
    };
    // Pipes deliver arbitrary chunks ("cat: ", "<path>", ": No such file"): each stream keeps its
    // unfinished line until the newline (or the end) comes.
    const taker = () => {
      let partial = '';
      const take = (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxOutputBytes) stop(`it wrote more than ${maxOutputBytes} bytes of output`);
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        // A line longer than 64 KiB without a newline is passed on in pieces (bounded memory).
        if (partial.length > 65536) {
          lines.push(partial);
          partial = '';
        }
        lines.forEach(line);
      };
      const flush = () => {
        line(partial);
        partial = '';
      };
      return Object.assign(take, { flush });
    };
    const out = taker();
    const err = taker();
    child.stdout.on('data', out);
    child.stderr.on('data', err);
    const timer = setTimeout(() => stop(`it ran longer than ${timeoutMs} ms`), timeoutMs);
    child.on('error', (err) =>
      rej(
        new Error(
          `cannot run the build command '${command}'${run.sandbox ? ' in the sandbox' : ''}: ${err.message}`,
        ),
      ),
    );
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      out.flush();
      err.flush();
      const last = `; last output:\n${tail.join('\n')}`;
      if (stopped) rej(new Error(`the build command '${command}' was stopped because ${stopped}${last}`));
      else if (code === 0) res();
      else
        rej(
          new Error(
            `the build command '${command}' ${signal ? `was killed (${signal})` : `failed with exit code ${code}`}${run.sandbox ? ' (in the build sandbox: no network, only the build directory writable; docs/build-sandbox.md)' : ''}${last}`,
          ),
        );
    });
  });
}
