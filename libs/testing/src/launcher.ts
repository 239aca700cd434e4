import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface LaunchedServer {
  /** Value of the `NAME=value` line the launcher printed last. */
  value: string;
  /** The launcher's state directory (passed to its stop script). */
  stateDir: string;
  stop(): Promise<void>;
}

/** Repository root, found from this file so tests work from any working directory. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('cannot find the repository root (no nx.json above ' + __dirname + ')');
    dir = up;
  }
  return dir;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * Runs `tools/<kind>/start`, which prints `NAME=value` as its last stdout line and keeps its
 * state under one directory; `stop()` runs `tools/<kind>/stop` on that directory.
 */
export async function runLauncher(kind: 'kafka' | 'postgres', variable: string): Promise<LaunchedServer> {
  const tools = join(repoRoot(), 'tools', kind);
  const stateDir = mkdtempSync(join(tmpdir(), `dsu-test-${kind}-`));
  const stateVar = kind === 'kafka' ? 'KAFKA_STATE_DIR' : 'PG_STATE_DIR';
  const env = { ...process.env, [stateVar]: stateDir };
  const { code, stdout, stderr } = await run(join(tools, 'start'), [], env);
  const last = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith(variable + '=')) {
    await run(join(tools, 'stop'), [stateDir], env).catch(() => undefined);
    throw new Error(`tools/${kind}/start failed (exit ${code}); its output:\n${stdout}\n${stderr}`);
  }
  return {
    value: last.slice(variable.length + 1),
    stateDir,
    stop: async () => {
      const res = await run(join(tools, 'stop'), [stateDir], env);
      if (res.code !== 0) throw new Error(`tools/${kind}/stop failed (exit ${res.code}): ${res.stderr}`);
    },
  };
}
