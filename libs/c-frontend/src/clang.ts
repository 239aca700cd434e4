import { execFileSync } from 'node:child_process';

const CANDIDATES = ['clang-22', 'clang-21', 'clang-20', 'clang-19', 'clang'];
const MIN_MAJOR = 14;

/**
 * The clang used as the C front end: `DSU_CLANG` when set, else the newest clang on PATH.
 * Throws with the install command when none is usable.
 */
export function findClang(env: NodeJS.ProcessEnv = process.env): { path: string; major: number } {
  const tried = env.DSU_CLANG ? [env.DSU_CLANG] : CANDIDATES;
  for (const cmd of tried) {
    try {
      const out = execFileSync(cmd, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const major = Number(/clang version (\d+)/.exec(out)?.[1]);
      if (major >= MIN_MAJOR) return { path: cmd, major };
    } catch {
      // not installed under this name; try the next one
    }
  }
  throw new Error(
    `no usable clang (>= ${MIN_MAJOR}) found (tried ${tried.join(', ')}); install one with ` +
      `'apt-get install clang-19' (or run tools/bootstrap), or point DSU_CLANG at it`,
  );
}
