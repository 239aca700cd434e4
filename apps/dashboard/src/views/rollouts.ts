import { Chart } from '../charts-setup';
import { api } from '../api';
import { badge, h, mount, short, when } from '../dom';
import type { Page } from '../main';
import type { RolloutView } from '../types';

const charts = new Map<string, Chart>();

/** Live rollouts, newest first: progress, each process's outcome, failures, abort and retry. */
export function renderRollouts(page: Page, root: HTMLElement): void {
  const rollouts = page.feed.rollouts;
  if (!rollouts) return mount(root, h('p', { class: 'empty' }, 'Waiting for the live feed…'));
  if (rollouts.length === 0)
    return mount(root, h('p', { class: 'empty' }, 'No rollout yet. Start one with: dsu rollout <program> --to <version>'));
  charts.forEach((c) => c.destroy());
  charts.clear();
  mount(root, h('section', { class: 'rollouts' }, rollouts.map((r) => rolloutCard(page, r))));
}

function rolloutCard(page: Page, r: RolloutView): HTMLElement {
  const total = r.targets.length;
  const reported = r.targets.filter((t) => t.reported || t.state === 'failed' || t.state === 'aborted').length;
  const byHost = new Map<string, RolloutView['targets']>();
  for (const t of r.targets) byHost.set(t.host, [...(byHost.get(t.host) ?? []), t]);
  const result = (host: string, pid: number) => r.results.find((x) => x.host === host && x.pid === pid);
  const open = r.status === 'requested' || r.status === 'running';
  const canvas = h('canvas', { 'aria-label': `pause times of rollout ${r.rolloutId}` });
  const card = h(
    'article',
    { class: `card rollout`, 'data-rollout': r.rolloutId, 'data-status': r.status },
    h(
      'header',
      {},
      h('h2', {}, `${r.program} → ${r.version}`),
      badge(r.status),
      h('span', { class: 'meta' }, `rollout ${short(r.rolloutId, 8)} · requested ${when(r.requestedAt)}`, r.completedAt ? ` · ended ${when(r.completedAt)}` : ''),
    ),
    h('div', { class: 'progress' }, h('progress', { max: Math.max(total, 1), value: reported }), ` ${reported} / ${total} processes`),
    r.notes.length ? h('ul', { class: 'notes' }, r.notes.map((n) => h('li', {}, n))) : null,
    [...byHost].map(([host, targets]) =>
      h(
        'table',
        { class: 'targets', 'data-host': host },
        h('caption', {}, `host ${host}`),
        h('tr', {}, ['pid', 'from build', 'state', 'outcome', 'pause', 'update point', 'reason'].map((c) => h('th', {}, c))),
        targets.map((t) => {
          const x = result(host, t.pid);
          return h(
            'tr',
            { 'data-pid': t.pid },
            h('td', {}, t.pid),
            h('td', { class: 'mono' }, short(t.fromBuildId)),
            h('td', {}, badge(t.state)),
            h('td', {}, x ? badge(x.outcome) : '—'),
            h(
              'td',
              {},
              x && x.outcome === 'applied' ? `${x.pauseUs} µs` : '—',
              x && x.instances !== null ? ` · ${x.instances} instances transformed` : '',
            ),
            h('td', {}, x?.updatePoint ?? '—'),
            h('td', { class: 'reason' }, t.reason ?? x?.reasons.join('; ') ?? ''),
          );
        }),
      ),
    ),
    r.results.some((x) => x.outcome === 'applied') ? h('div', { class: 'chart small' }, canvas) : null,
    h('footer', {}, open ? abortForm(page, r) : retryButton(page, r)),
  );
  const pauses = r.results.filter((x) => x.outcome === 'applied').map((x) => x.pauseUs);
  if (pauses.length) queueMicrotask(() => charts.set(r.rolloutId, pauseHistogram(canvas, pauses)));
  return card;
}

function abortForm(page: Page, r: RolloutView): HTMLElement {
  const reason = h('input', { name: 'reason', placeholder: 'why (required)', required: true, maxlength: 500 });
  return h(
    'form',
    {
      class: 'actions',
      onsubmit: (e: Event) => {
        e.preventDefault();
        api(`/rollouts/${encodeURIComponent(r.rolloutId)}/abort`, { method: 'POST', body: { reason: reason.value } }).catch((err) =>
          page.problem(err),
        );
      },
    },
    reason,
    h('button', { type: 'submit', class: 'danger' }, 'Abort'),
  );
}

function retryButton(page: Page, r: RolloutView): HTMLElement {
  return h(
    'button',
    {
      class: 'actions',
      onclick: () => api(`/rollouts/${encodeURIComponent(r.rolloutId)}/retry`, { method: 'POST' }).catch((err) => page.problem(err)),
    },
    'Retry',
  );
}

/** Pause times in buckets (µs): how long the processes were paused. */
export function pauseHistogram(canvas: HTMLCanvasElement, pausesUs: number[]): Chart {
  const edges = [50, 100, 250, 500, 1000, 2500, 5000, 10000, Infinity];
  const counts = edges.map(() => 0);
  for (const p of pausesUs) counts[edges.findIndex((e) => p <= e)]++;
  const labels = edges.map((e, i) => (e === Infinity ? `> ${edges[i - 1]} µs` : `≤ ${e} µs`));
  return new Chart(canvas, {
    type: 'bar',
    data: { labels, datasets: [{ label: 'processes', data: counts, backgroundColor: '#4c78a8' }] },
    options: { animation: false, plugins: { legend: { display: false } }, scales: { y: { ticks: { precision: 0 } } } },
  });
}
