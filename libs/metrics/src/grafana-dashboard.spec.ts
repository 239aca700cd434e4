import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PipelineMetrics } from './pipeline-metrics';

const DASHBOARD = join(__dirname, '../../../infra/grafana/dsu-pipeline.json');

interface Panel {
  id: number;
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { uid: string };
  targets: { refId: string; expr: string }[];
}

/** The metric names a PromQL expression reads (identifiers followed by `{`, `[` or a space-free end). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(dsu_[a-z_]+)\b/g)].map((m) => m[1]);
}

describe('the Grafana dashboard in infra/grafana', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    uid: string;
    panels: Panel[];
    __inputs: { name: string }[];
  };

  it('is a Grafana dashboard whose panels each query the Prometheus data source it asks for on import', () => {
    expect(dashboard.uid).toBe('dsu-pipeline');
    expect(dashboard.__inputs.map((i) => i.name)).toEqual(['DS_PROMETHEUS']);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect({ title: p.title, uid: p.datasource.uid }).toEqual({ title: p.title, uid: '${DS_PROMETHEUS}' });
      expect(p.targets.length).toBeGreaterThan(0);
      expect(p.gridPos.w).toBeGreaterThan(0);
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    }
  });

  it('reads only series the services export (a renamed metric breaks this test, not the dashboard)', async () => {
    const exported = new Set(
      (await new PipelineMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name),
    );
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricNames(t.expr)));
    expect(used.length).toBeGreaterThanOrEqual(10);
    const unknown = used.filter((n) => !exported.has(n.replace(/_(bucket|sum|count)$/, '')));
    expect(unknown).toEqual([]);
    // Every series of the list has a panel.
    for (const name of [
      'dsu_update_pause_seconds',
      'dsu_applies_total',
      'dsu_stage_duration_seconds',
      'dsu_events_consumed_total',
      'dsu_consumer_lag',
      'dsu_outbox_backlog',
      'dsu_events_dead_lettered_total',
      'dsu_event_handler_errors_total',
      'dsu_fleet_processes',
      'dsu_instances_transformed',
    ])
      expect({ name, used: used.some((u) => u.replace(/_(bucket|sum|count)$/, '') === name) }).toEqual({
        name,
        used: true,
      });
  });
});
