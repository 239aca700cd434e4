import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface RuntimeLocation {
  /** Directory holding dsu.h. */
  includeDir: string;
  /** The static runtime library linked into every program. */
  library: string;
}

/** Finds libdsu: `DSU_RUNTIME_DIR` (a libs/runtime checkout or install), else the workspace's. */
export function locateRuntime(env: NodeJS.ProcessEnv = process.env): RuntimeLocation {
  const root = env.DSU_RUNTIME_DIR ?? dirname(require.resolve('@dsu/runtime/package.json'));
  const loc = { includeDir: join(root, 'include'), library: join(root, 'build', 'libdsu.a') };
  if (!existsSync(loc.library)) {
    throw new Error(`libdsu is not built (${loc.library} is missing); run 'make -C ${root}' or 'npx nx build runtime'`);
  }
  return loc;
}
