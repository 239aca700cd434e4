import type { EntityManager } from 'typeorm';
import { AuditEntity } from '@dsu/persistence';
import type { Actor } from '../../domain/actor';

/** One audited action; `detail` is small JSON (ids, hashes, reasons), never a secret. */
export interface AuditEntry {
  actor: Actor;
  action: string;
  program?: string | null;
  target?: string | null;
  outcome: string;
  detail?: Record<string, unknown>;
}

/**
 * Writes an audit row with `em`: pass the transaction's entity manager so the row commits (or
 * rolls back) together with what it records.
 */
export async function recordAudit(em: EntityManager, e: AuditEntry): Promise<void> {
  const row: Omit<AuditEntity, 'seq'> = {
    at: new Date().toISOString(),
    actorKind: e.actor.kind,
    actorId: e.actor.id.slice(0, 128),
    actorName: e.actor.name.slice(0, 128),
    action: e.action,
    program: e.program ?? null,
    target: e.target?.slice(0, 256) ?? null,
    outcome: e.outcome.slice(0, 32),
    detail: e.detail ?? {},
  };
  // save (not insert): its typing accepts the free-form JSON of `detail`; no seq, so it inserts.
  await em.save(em.create(AuditEntity, row));
}
