import type { DataSource } from 'typeorm';
import { AuditEntity } from '@dsu/persistence';

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;

/** An audit row as the API returns it. */
export interface AuditView {
  seq: number;
  at: string;
  actor: { kind: string; id: string; name: string };
  action: string;
  program: string | null;
  target: string | null;
  outcome: string;
  detail: Record<string, unknown>;
}

/** The latest `limit` audit rows (of one program when given), oldest first. */
export async function listAudit(
  ds: DataSource,
  q: { program?: string; limit?: number } = {},
): Promise<AuditView[]> {
  const limit = Math.min(Math.max(1, q.limit ?? AUDIT_DEFAULT_LIMIT), AUDIT_MAX_LIMIT);
  const rows = await ds.getRepository(AuditEntity).find({
    where: q.program ? { program: q.program } : {},
    order: { seq: 'DESC' },
    take: limit,
  });
  return rows.reverse().map((r) => ({
    seq: r.seq,
    at: r.at,
    actor: { kind: r.actorKind, id: r.actorId, name: r.actorName },
    action: r.action,
    program: r.program,
    target: r.target,
    outcome: r.outcome,
    detail: r.detail,
  }));
}
