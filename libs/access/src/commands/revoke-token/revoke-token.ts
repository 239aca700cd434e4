import type { DataSource } from 'typeorm';
import { inTransaction } from '@dsu/outbox';
import { ApiTokenEntity } from '@dsu/persistence';
import type { Actor } from '../../domain/actor';
import { AccessError } from '../../errors';
import { recordAudit } from '../record-audit/record-audit';

/**
 * Revokes a token for good (idempotent: revoking a revoked token reports when it was revoked) and
 * writes the `token.revoke` audit row in the same transaction.
 */
export async function revokeToken(
  ds: DataSource,
  id: string,
  by: Actor,
): Promise<{ id: string; name: string; revokedAt: string }> {
  return inTransaction(ds, async (em) => {
    const row = await em.findOneBy(ApiTokenEntity, { id });
    if (!row) throw new AccessError(404, `token '${id}' is not known; 'dsu token list' shows the ids`);
    if (row.revokedAt) return { id, name: row.name, revokedAt: row.revokedAt };
    const revokedAt = new Date().toISOString();
    await em.update(ApiTokenEntity, { id }, { revokedAt });
    await recordAudit(em, {
      actor: by,
      action: 'token.revoke',
      target: id,
      outcome: 'revoked',
      detail: { name: row.name },
    });
    return { id, name: row.name, revokedAt };
  });
}
