import type { GaugeSample, PipelineMetrics } from '@dsu/metrics';
import { InventoryEntity, OutboxEntity } from '@dsu/persistence';
import type { PipelineInfra } from './infra';

/**
 * Registers the scrape-time gauges of the services running on `infra`: consumer lag from the bus,
 * the backlog of this process's outboxes, and (with the gateway) the fleet's processes per host
 * and build with each host's heartbeat age. Returns the removal, for when the services stop.
 */
export function registerMetricSources(
  metrics: PipelineMetrics,
  infra: PipelineInfra,
  opts: { producers: () => string[]; fleet: boolean },
): () => void {
  const removals = [
    metrics.addSource('consumerLag', async () =>
      ((await infra.bus.lag?.()) ?? []).map((l) => ({ labels: { group: l.group, topic: l.topic }, value: l.lag })),
    ),
    metrics.addSource('outboxBacklog', () => outboxBacklog(infra, opts.producers())),
  ];
  if (opts.fleet) {
    removals.push(metrics.addSource('fleetProcesses', async () => fleetProcesses(await inventory(infra))));
    removals.push(
      metrics.addSource('heartbeatAge', async () =>
        (await inventory(infra)).map((h) => ({
          labels: { host: h.host },
          value: Math.max(0, (Date.now() - Date.parse(h.seenAt)) / 1000),
        })),
      ),
    );
  }
  return () => removals.forEach((r) => r());
}

/** Unpublished outbox rows per producer of this process (zero for a producer with none). */
async function outboxBacklog(infra: PipelineInfra, producers: string[]): Promise<GaugeSample[]> {
  if (producers.length === 0) return [];
  const rows: { producer: string; n: string | number }[] = await infra.ds
    .getRepository(OutboxEntity)
    .createQueryBuilder('o')
    .select('o.producer', 'producer')
    .addSelect('COUNT(*)', 'n')
    .where('o.sentAt IS NULL')
    .andWhere('o.producer IN (:...producers)', { producers })
    .groupBy('o.producer')
    .getRawMany();
  return producers.map((producer) => ({
    labels: { producer },
    value: Number(rows.find((r) => r.producer === producer)?.n ?? 0),
  }));
}

function inventory(infra: PipelineInfra): Promise<InventoryEntity[]> {
  return infra.ds.getRepository(InventoryEntity).find();
}

/** Processes per host, program and build in the hosts' last heartbeats. */
export function fleetProcesses(hosts: readonly Pick<InventoryEntity, 'host' | 'processes'>[]): GaugeSample[] {
  const counts = new Map<string, GaugeSample>();
  for (const h of hosts)
    for (const p of h.processes) {
      const k = `${h.host}\0${p.program}\0${p.buildId}`;
      const s = counts.get(k) ?? { labels: { host: h.host, program: p.program, build: p.buildId }, value: 0 };
      s.value++;
      counts.set(k, s);
    }
  return [...counts.values()];
}
