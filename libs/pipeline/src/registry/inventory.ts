import { In } from 'typeorm';
import type { AgentHeartbeatV1, CloudEvent } from '@dsu/events';
import { InventoryEntity, VersionEntity } from '@dsu/persistence';
import type { RegistryContext } from './context';
import type { InventoryView } from './views';

/**
 * Keeps each host's latest heartbeat: the inventory rollouts are planned from. Not deduplicated
 * through the outbox like the other events (a heartbeat is a snapshot, replaying one is harmless);
 * the event time decides instead, so an older heartbeat never replaces a newer one.
 */
export async function onHeartbeat(ctx: RegistryContext, event: CloudEvent): Promise<void> {
  const h = event.data as AgentHeartbeatV1;
  await ctx.outbox.transact(async ({ em }) => {
    const row = await em.findOneBy(InventoryEntity, { host: h.host });
    // Redelivered or reordered heartbeats must not overwrite a newer inventory.
    if (row && row.seenAt > event.time) return;
    await em.save(InventoryEntity, {
      host: h.host,
      runDir: h.runDir,
      processes: h.processes,
      seenAt: event.time,
    });
  });
}

/** Each host's processes with the version each runs (from the registry's build ids). */
/**
 * How long a host may stay silent before its inventory is stale: three heartbeat periods, at
 * least 10 s (a busy applier skips heartbeats while it applies a command).
 */
export function staleAfter(heartbeatMs: number): number {
  return Math.max(10_000, 3 * heartbeatMs);
}

export async function listInventory(ctx: RegistryContext): Promise<InventoryView[]> {
  const hosts = await ctx.infra.ds.getRepository(InventoryEntity).find({ order: { host: 'ASC' } });
  const builds = await ctx.infra.ds
    .getRepository(VersionEntity)
    .find({ where: { buildId: In(hosts.flatMap((h) => h.processes.map((p) => p.buildId))) } });
  const versionOf = new Map(builds.map((b) => [`${b.program}\0${b.buildId}`, b.version]));
  const staleAfterMs = staleAfter(ctx.infra.config.heartbeatMs);
  const now = Date.now();
  return hosts.map((h) => ({
    host: h.host,
    runDir: h.runDir,
    seenAt: h.seenAt,
    stale: now - Date.parse(h.seenAt) > staleAfterMs,
    processes: h.processes.map((p) => ({
      ...p,
      version: versionOf.get(`${p.program}\0${p.buildId}`) ?? null,
    })),
  }));
}
