import { execFile } from 'node:child_process';
import * as path from 'node:path';

const DSU = path.resolve(__dirname, '../../../../apps/cli/bin/dsu.js');

export interface DsuRun {
  code: number;
  json: Record<string, unknown> & { reasons?: string[] };
  stderr: string;
}

/** Runs the `dsu` command as a user would (`--json` added) and parses its one JSON object. */
export function dsu(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<DsuRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [DSU, ...args, '--json'],
      { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve({ code, json: JSON.parse(line), stderr });
        } catch {
          const how = err?.killed ? `was stopped after its ${timeoutMs} ms time limit (${err.signal ?? 'killed'})` : `exited ${code}`;
          reject(new Error(`dsu ${args.join(' ')} ${how} without JSON output:\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}
