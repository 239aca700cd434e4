import type { DataSource } from 'typeorm';
import { inTransaction } from '@dsu/outbox';
import { ApiTokenEntity } from '@dsu/persistence';
import type { Actor } from '../../domain/actor';
import { parseScopes, type Scope } from '../../domain/scopes';
import { generateToken, hashToken } from '../../domain/token-secret';
import { AccessError } from '../../errors';
import { recordAudit } from '../record-audit/record-audit';

const NAME = /^[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}$/;

export interface CreateToken {
  name: string;
  scopes: string | readonly unknown[];
  /** Who asks: an admin token, or the `local` service actor of `dsu up`'s first start. */
  by: Actor;
}

/** A created token. `token` is shown this once: only its hash is stored. */
export interface CreatedToken {
  id: string;
  name: string;
  scopes: Scope[];
  createdAt: string;
  token: string;
}

/** Creates a token and its `token.create` audit row in one transaction. */
export async function createToken(ds: DataSource, c: CreateToken): Promise<CreatedToken> {
  if (typeof c.name !== 'string' || !NAME.test(c.name))
    throw new AccessError(
      400,
      `token name '${String(c.name)}' must be 1-128 letters, digits, '@', '.', '_', ':' or '-'`,
    );
  let scopes: Scope[];
  try {
    scopes = parseScopes(c.scopes);
  } catch (err) {
    throw new AccessError(400, (err as Error).message);
  }
  const { id, token } = generateToken();
  const createdAt = new Date().toISOString();
  await inTransaction(ds, async (em) => {
    await em.insert(ApiTokenEntity, {
      id,
      name: c.name,
      tokenSha256: hashToken(token),
      scopes,
      createdAt,
      createdBy: c.by.id,
      lastUsedAt: null,
      revokedAt: null,
    });
    await recordAudit(em, {
      actor: c.by,
      action: 'token.create',
      target: id,
      outcome: 'created',
      detail: { name: c.name, scopes },
    });
  });
  return { id, name: c.name, scopes, createdAt, token };
}
