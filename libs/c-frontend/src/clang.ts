import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const CANDIDATES = ['clang-22', 'clang-21', 'clang-20', 'clang-19', 'clang'];
const MIN_MAJOR = 14;

/** The command's path on PATH, or undefined (a file check: no process is started). */
function onPath(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  if (cmd.includes('/')) return cmd;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const p = join(dir || '.', cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The clang used as the C front end: `DSU_CLANG` when set, else the newest clang on PATH.
 * Versioned names (`clang-19`) are found by a PATH lookup alone; only an unversioned `clang`
 * is asked for its version — dsu-cc runs this for every unit, so it must not cost a process each time.
 * Throws with the install command when none is usable.
 */
export function findClang(env: NodeJS.ProcessEnv = process.env): { path: string; major: number } {
  const tried = env.DSU_CLANG ? [env.DSU_CLANG] : CANDIDATES;
  for (const cmd of tried) {
    const path = onPath(cmd, env);
    if (!path) continue;
    const named = /clang-(\d+)$/.exec(cmd);
    if (named && Number(named[1]) >= MIN_MAJOR) return { path: cmd, major: Number(named[1]) };
    try {
      const out = execFileSync(cmd, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const major = Number(/clang version (\d+)/.exec(out)?.[1]);
      if (major >= MIN_MAJOR) return { path: cmd, major };
    } catch {
      // not runnable; try the next one
    }
  }
  throw new Error(
    `no usable clang (>= ${MIN_MAJOR}) found (tried ${tried.join(', ')}); install one with ` +
      `'apt-get install clang-19' (or run tools/bootstrap), or point DSU_CLANG at it`,
  );
}
