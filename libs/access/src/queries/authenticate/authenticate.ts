import type { DataSource } from 'typeorm';
import { inTransaction } from '@dsu/outbox';
import { ApiTokenEntity } from '@dsu/persistence';
import type { TokenActor } from '../../domain/actor';
import { hashToken, TOKEN_PREFIX } from '../../domain/token-secret';

/** `last_used_at` is refreshed at most this often, so reads do not each cost a write. */
const LAST_USED_PRECISION_MS = 60_000;

/**
 * The actor a bearer token stands for, or null when the token is unknown or revoked. Looks the
 * token up by its SHA-256 only (the database never sees the token).
 */
export async function authenticate(ds: DataSource, token: string): Promise<TokenActor | null> {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 256) return null;
  const row = await ds.getRepository(ApiTokenEntity).findOneBy({ tokenSha256: hashToken(token) });
  if (!row || row.revokedAt) return null;
  const now = new Date();
  if (!row.lastUsedAt || now.getTime() - Date.parse(row.lastUsedAt) > LAST_USED_PRECISION_MS) {
    await inTransaction(ds, (em) =>
      em.update(ApiTokenEntity, { id: row.id }, { lastUsedAt: now.toISOString() }),
    );
  }
  return { kind: 'token', id: row.id, name: row.name, scopes: row.scopes };
}
