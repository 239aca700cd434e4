import { badge, h, mount, short, when } from '../dom';
import type { Page } from '../main';

const filters = { program: '', build: '', state: 'all' };

/** Hosts and their processes from the last heartbeats; stale hosts highlighted; filters. */
export function renderFleet(page: Page, root: HTMLElement): void {
  const fleet = page.feed.fleet;
  if (!fleet) return mount(root, h('p', { class: 'empty' }, 'Waiting for the live feed…'));
  const input = (key: 'program' | 'build', placeholder: string) =>
    h('input', {
      name: key,
      placeholder,
      value: filters[key],
      oninput: (e: Event) => {
        filters[key] = (e.target as HTMLInputElement).value.trim();
        renderFleet(page, root);
        (root.querySelector(`input[name=${key}]`) as HTMLInputElement | null)?.focus();
      },
    });
  const state = h(
    'select',
    { name: 'state', onchange: (e: Event) => ((filters.state = (e.target as HTMLSelectElement).value), renderFleet(page, root)) },
    ['all', 'live', 'stale'].map((s) => h('option', { value: s, selected: s === filters.state }, s)),
  );
  const hosts = fleet.hosts
    .filter((x) => filters.state === 'all' || (filters.state === 'stale') === x.stale)
    .map((x) => ({
      ...x,
      processes: x.processes.filter(
        (p) =>
          (!filters.program || p.program.includes(filters.program)) &&
          (!filters.build || p.buildId.startsWith(filters.build) || (p.version ?? '').includes(filters.build)),
      ),
    }))
    .filter((x) => x.processes.length > 0 || (!filters.program && !filters.build));
  const total = hosts.reduce((n, x) => n + x.processes.length, 0);
  mount(
    root,
    h('form', { class: 'filters', onsubmit: (e: Event) => e.preventDefault() }, input('program', 'program'), input('build', 'build id or version'), state),
    h('p', { class: 'meta' }, `${hosts.length} hosts, ${total} processes; a host is stale after ${Math.round(fleet.staleAfterMs / 1000)} s without a heartbeat`),
    h(
      'table',
      { class: 'fleet' },
      h('tr', {}, ['host', 'last heartbeat', 'pid', 'program', 'version', 'build', 'patches'].map((c) => h('th', {}, c))),
      hosts.flatMap((x) =>
        (x.processes.length ? x.processes : [null]).map((p, i) =>
          h(
            'tr',
            { class: x.stale ? 'stale' : '', 'data-host': x.host, 'data-pid': p?.pid },
            h('td', {}, i === 0 ? x.host : ''),
            h('td', {}, i === 0 ? [when(x.seenAt), x.stale ? badge('stale') : null] : ''),
            h('td', {}, p?.pid ?? '—'),
            h('td', {}, p?.program ?? ''),
            h('td', {}, p?.version ?? (p ? 'unknown build' : '')),
            h('td', { class: 'mono' }, short(p?.buildId)),
            h('td', {}, p ? String(p.patches.length) : ''),
          ),
        ),
      ),
    ),
  );
}
