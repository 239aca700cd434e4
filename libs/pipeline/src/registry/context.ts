import type { Log, Outbox } from '@dsu/outbox';
import type { PipelineInfra } from '../shared/infra';

/** The gateway's consumer id: its group on the bus and its dedupe key in the outbox. */
export const GATEWAY = 'gateway';

/**
 * What every part of the registry works with, passed explicitly so each part is a set of plain
 * functions (like abortRollout) rather than a slice of one class: the database and config
 * (`infra`), the transactional outbox its writes and events go through, and its log.
 */
export interface RegistryContext {
  readonly infra: PipelineInfra;
  readonly outbox: Outbox;
  readonly log: Log;
}

/** The registry's timestamps: ISO-8601 strings, sortable as text on SQLite and PostgreSQL alike. */
export const now = () => new Date().toISOString();
