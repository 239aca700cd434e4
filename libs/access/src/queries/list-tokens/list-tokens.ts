import type { DataSource } from 'typeorm';
import { ApiTokenEntity } from '@dsu/persistence';

/** A token as lists show it: everything but its hash. */
export interface TokenView {
  id: string;
  name: string;
  scopes: string[];
  createdAt: string;
  createdBy: string;
  lastUsedAt: string | null;
  revoked: boolean;
  revokedAt: string | null;
}

/** Every token, oldest first, revoked ones included (marked). */
export async function listTokens(ds: DataSource): Promise<TokenView[]> {
  const rows = await ds.getRepository(ApiTokenEntity).find({ order: { createdAt: 'ASC', id: 'ASC' } });
  return rows.map((t) => ({
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    createdAt: t.createdAt,
    createdBy: t.createdBy,
    lastUsedAt: t.lastUsedAt,
    revoked: t.revokedAt !== null,
    revokedAt: t.revokedAt,
  }));
}
