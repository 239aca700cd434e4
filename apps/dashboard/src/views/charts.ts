import { api } from '../api';
import { Chart } from '../charts-setup';
import { h, mount } from '../dom';
import type { Page } from '../main';
import type { PatchView, ResultView, VerdictView, VersionView } from '../types';
import { pauseHistogram } from './rollouts';

interface Data {
  results: ResultView[];
  stages: { label: string; build: number; patch: number; check: number; rollout: number }[];
  stamp: string;
}
let data: Data | null = null;
let loading = '';
const drawn: Chart[] = [];

/** Pause times (over time and their distribution) and submit → applied latency per stage. */
export function renderCharts(page: Page, root: HTMLElement): void {
  const stamp = JSON.stringify([page.feed.rollouts?.map((r) => [r.rolloutId, r.status, r.results.length]), page.feed.programs]);
  if (page.feed.rollouts && page.feed.programs && data?.stamp !== stamp && loading !== stamp) {
    loading = stamp;
    void load(page, stamp).then(() => page.tab === 'charts' && renderCharts(page, root), (err) => page.problem(err));
  }
  drawn.splice(0).forEach((c) => c.destroy());
  if (!data) return mount(root, h('p', { class: 'empty' }, 'Loading…'));
  const applied = data.results.filter((r) => r.outcome === 'applied');
  const over = h('canvas', { id: 'pause-over-time' });
  const dist = h('canvas', { id: 'pause-distribution' });
  const stages = h('canvas', { id: 'stage-latency' });
  const transformed = h('canvas', { id: 'instances-transformed' });
  const dataUpdates = applied.filter((r) => r.instances !== null);
  mount(
    root,
    h(
      'section',
      { class: 'charts' },
      h('article', { class: 'card chart' }, h('h2', {}, 'Pause per update, over time (µs)'), over),
      h('article', { class: 'card chart' }, h('h2', {}, `Pause distribution (${applied.length} updates)`), dist),
      h('article', { class: 'card chart wide' }, h('h2', {}, 'Submit → applied, per stage (seconds)'), stages),
      h(
        'article',
        { class: 'card chart wide' },
        h('h2', {}, `Instances transformed per data update (${dataUpdates.length} processes)`),
        dataUpdates.length ? transformed : h('p', { class: 'empty' }, 'No data update applied yet.'),
      ),
    ),
  );
  drawn.push(
    new Chart(over, {
      type: 'scatter',
      data: {
        datasets: [{ label: 'pause (µs)', data: applied.map((r) => ({ x: Date.parse(r.reportedAt), y: r.pauseUs })), backgroundColor: '#4c78a8' }],
      },
      options: {
        animation: false,
        plugins: { legend: { display: false } },
        scales: {
          // At least a minute wide, so a single update is not drawn across a meaningless range.
          x: { type: 'linear', ...timeRange(applied.map((r) => Date.parse(r.reportedAt))), ticks: { callback: (v) => new Date(Number(v)).toLocaleTimeString() } },
          y: { beginAtZero: true },
        },
      },
    }),
    pauseHistogram(dist, applied.map((r) => r.pauseUs)),
    new Chart(stages, {
      type: 'bar',
      data: {
        labels: data.stages.map((s) => s.label),
        datasets: (['build', 'patch', 'check', 'rollout'] as const).map((k, i) => ({
          label: k,
          data: data!.stages.map((s) => s[k]),
          backgroundColor: ['#4c78a8', '#f58518', '#54a24b', '#b279a2'][i],
        })),
      },
      options: { animation: false, indexAxis: 'y', scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } } },
    }),
  );
  if (dataUpdates.length)
    drawn.push(
      new Chart(transformed, {
        type: 'bar',
        data: {
          labels: dataUpdates.map((r) => `${r.program} pid ${r.pid} ${new Date(r.reportedAt).toLocaleTimeString()}`),
          datasets: [
            { label: 'instances', data: dataUpdates.map((r) => r.instances ?? 0), backgroundColor: '#54a24b' },
          ],
        },
        options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
      }),
    );
}

function timeRange(ts: number[]): { min?: number; max?: number } {
  if (ts.length === 0) return {};
  const lo = Math.min(...ts);
  const hi = Math.max(...ts);
  const pad = Math.max(0, 60_000 - (hi - lo)) / 2;
  return { min: lo - pad, max: hi + pad };
}

const secs = (from: string | null | undefined, to: string | null | undefined) =>
  from && to ? Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000) : 0;

async function load(page: Page, stamp: string): Promise<void> {
  const results = await api<ResultView[]>('/results');
  const stages: Data['stages'] = [];
  for (const p of page.feed.programs ?? []) {
    const q = encodeURIComponent(p.program);
    const [versions, patches, verdicts] = await Promise.all([
      api<VersionView[]>(`/programs/${q}/versions`),
      api<PatchView[]>(`/patches?program=${q}`),
      api<VerdictView[]>(`/verdicts?program=${q}`),
    ]);
    for (const v of versions) {
      const patch = patches.find((x) => x.patchId && x.patchId === v.patch?.id);
      const verdict = verdicts.find((x) => x.patchId === patch?.patchId);
      const rollout = (page.feed.rollouts ?? []).filter((r) => r.program === p.program && r.version === v.version).at(-1);
      const last = rollout?.results.map((r) => r.reportedAt).sort().at(-1);
      stages.push({
        label: `${p.program} ${v.version}`,
        build: v.durationMs !== null ? v.durationMs / 1000 : secs(v.requestedAt, v.builtAt),
        patch: secs(patch?.requestedAt, patch?.generatedAt),
        check: secs(patch?.generatedAt, verdict?.checkedAt),
        rollout: secs(rollout?.requestedAt, last),
      });
    }
  }
  data = { results, stages, stamp };
}
