import './style.css';
import { ApiError, follow, setToken, token } from './api';
import { h, mount } from './dom';
import type { Feed, Topic } from './types';
import { renderCharts } from './views/charts';
import { renderFleet } from './views/fleet';
import { renderPrograms } from './views/programs';
import { renderRollouts } from './views/rollouts';

/** The page's state: the live feed's latest data per topic, and the tab shown. */
export interface Page {
  feed: Partial<Feed>;
  tab: Tab;
  /** Re-renders the current tab (views call it after their own fetches). */
  render(): void;
  /** Shows an error from an action (a refused abort, an expired token). */
  problem(err: unknown): void;
}

type Tab = 'rollouts' | 'fleet' | 'programs' | 'charts';
const TABS: Record<Tab, { label: string; view: (page: Page, root: HTMLElement) => void }> = {
  rollouts: { label: 'Rollouts', view: renderRollouts },
  fleet: { label: 'Fleet', view: renderFleet },
  programs: { label: 'Programs', view: renderPrograms },
  charts: { label: 'Charts', view: renderCharts },
};

const app = document.getElementById('app') as HTMLElement;
const live = document.getElementById('live') as HTMLElement;

const page: Page = {
  feed: {},
  tab: (location.hash.replace('#', '') as Tab) in TABS ? (location.hash.replace('#', '') as Tab) : 'rollouts',
  render() {
    mount(
      document.getElementById('tabs') as HTMLElement,
      ...Object.entries(TABS).map(([id, t]) =>
        h('button', { class: id === page.tab ? 'tab on' : 'tab', 'data-tab': id, onclick: () => show(id as Tab) }, t.label),
      ),
    );
    TABS[page.tab].view(page, app);
  },
  problem(err) {
    if (err instanceof ApiError && err.status === 401) return askToken(err.message);
    const box = h('div', { class: 'problem', role: 'alert' }, err instanceof Error ? err.message : String(err));
    app.prepend(box);
    setTimeout(() => box.remove(), 10_000);
  },
};

function show(tab: Tab): void {
  page.tab = tab;
  history.replaceState(null, '', `#${tab}`);
  page.render();
}

/** Asks for an API token (a `read` token shows everything; `rollout` also allows abort and retry). */
function askToken(why?: string): void {
  stop?.();
  const input = h('input', { type: 'password', name: 'token', placeholder: 'dsu_…', autocomplete: 'off', size: 60 });
  mount(
    app,
    h(
      'form',
      {
        class: 'login',
        onsubmit: (e: Event) => {
          e.preventDefault();
          setToken(input.value);
          start();
        },
      },
      h('h2', {}, 'API token'),
      h('p', {}, why ?? 'The gateway needs an API token to show its data.'),
      h('p', { class: 'hint' }, "Make one with: dsu token create --name dashboard --scopes read (or rollout, to abort and retry); dsu up's own is in $DSU_HOME/token."),
      input,
      h('button', { type: 'submit' }, 'Open'),
    ),
  );
}

let stop: (() => void) | undefined;

function start(): void {
  page.render();
  stop = follow(
    <K extends Topic>(topic: K, data: Feed[K]) => {
      page.feed[topic] = data;
      page.render();
    },
    (state, detail) => {
      live.textContent = state === 'live' ? 'live' : state;
      live.className = `live ${state}`;
      live.dataset.state = state;
      if (state === 'unauthorized') askToken(detail);
    },
  );
}

// A token handed over in the fragment of an already open page (a pasted link) is taken at once.
window.addEventListener('hashchange', () => {
  if (!/token=/.test(location.hash)) return;
  token();
  stop?.();
  start();
});
token();
start();
