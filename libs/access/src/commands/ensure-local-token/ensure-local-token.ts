import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import type { DataSource } from 'typeorm';
import { ApiTokenEntity, dsuHome } from '@dsu/persistence';
import type { Actor } from '../../domain/actor';
import { grants } from '../../domain/scopes';
import { hashToken } from '../../domain/token-secret';
import { createToken } from '../create-token/create-token';

/** Where the local user's token lives: `DSU_TOKEN_FILE`, else `$DSU_HOME/token` (the CLI reads the same). */
export function localTokenPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DSU_TOKEN_FILE || join(dsuHome(env), 'token');
}

/** The actor of tokens the gateway makes for its local user on first start. */
export const LOCAL_BOOTSTRAP: Actor = { kind: 'service', id: 'local', name: 'gateway first start' };

/**
 * Makes sure the local user has a working admin token in `file` (mode 0600), so `dsu up` followed
 * by `dsu submit` needs no configuration: keeps the file when its token is valid and admin,
 * otherwise creates an admin token in the database (`local:<user>`) and writes it there.
 */
export async function ensureLocalToken(
  ds: DataSource,
  file: string,
): Promise<{ path: string; id: string; created: boolean }> {
  const existing = readToken(file);
  if (existing) {
    const row = await ds.getRepository(ApiTokenEntity).findOneBy({ tokenSha256: hashToken(existing) });
    if (row && !row.revokedAt && grants(row.scopes, 'admin')) {
      // A copy restored with a looser mode is tightened again: the file is a credential.
      if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
      return { path: file, id: row.id, created: false };
    }
  }
  const created = await createToken(ds, {
    name: `local:${safeUser()}`,
    scopes: ['admin'],
    by: LOCAL_BOOTSTRAP,
  });
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Written under another name with mode 0600 from the start, then renamed: the token is never
  // readable by others, and a reader never sees half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, created.token + '\n', { mode: 0o600, flag: 'w' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return { path: file, id: created.id, created: true };
}

function readToken(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read the token file ${file}: ${(err as Error).message}`);
  }
}

function safeUser(): string {
  try {
    return (
      userInfo()
        .username.replace(/[^A-Za-z0-9@._:-]/g, '_')
        .slice(0, 100) || 'user'
    );
  } catch {
    return 'user';
  }
}
