// Builds DOM nodes from data without HTML strings: every text goes through textContent, so names
// and messages from the API (which users chose) can never inject markup.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

/** An element with attributes (`on*` functions become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces the contents of `el`. */
export function mount(el: Element, ...nodes: (Node | null)[]): void {
  el.replaceChildren(...nodes.filter((n): n is Node => n !== null));
}

/** A short, readable time: "12:03:04" today, else the date too. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** A badge whose class is its state (styled per state in style.css). */
export function badge(state: string): HTMLSpanElement {
  return h('span', { class: `badge s-${state.replace(/[^a-z-]/g, '')}`, 'data-state': state }, state);
}

export const short = (id: string | null | undefined, n = 12) => (id ? id.slice(0, n) : '—');
