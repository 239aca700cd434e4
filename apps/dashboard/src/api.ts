// The gateway's API as the page uses it: the user's token on every request, and the live feed
// (server-sent events) read through fetch, since EventSource cannot send the token.
import type { Feed, Topic } from './types';

const KEY = 'dsu.token';

/** The token: from the URL fragment once (#token=...), then from this tab's session storage. */
export function token(): string | null {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY);
}

export function setToken(t: string): void {
  sessionStorage.setItem(KEY, t.trim());
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** GET or POST JSON with the token; throws ApiError with the gateway's message. */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const t = token();
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: {
      ...(t ? { authorization: `Bearer ${t}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : null;
  if (!res.ok) throw new ApiError(res.status, (json as { error?: string } | null)?.error ?? `HTTP ${res.status}`);
  return json as T;
}

/**
 * Follows GET /stream: calls `on(topic, data)` for each event, `state` when the connection opens
 * or drops; reconnects after a drop (1 s, growing to 15 s). Returns a function that stops it.
 */
export function follow(
  on: <K extends Topic>(topic: K, data: Feed[K]) => void,
  state: (s: 'live' | 'reconnecting' | 'unauthorized', detail?: string) => void,
): () => void {
  let stopped = false;
  let ctrl: AbortController | undefined;
  let delay = 1000;
  const run = async () => {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const t = token();
        const res = await fetch('/stream', {
          headers: { accept: 'text/event-stream', ...(t ? { authorization: `Bearer ${t}` } : {}) },
          signal: ctrl.signal,
        });
        if (res.status === 401 || res.status === 403) {
          state('unauthorized', ((await res.json()) as { error?: string }).error);
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        state('live');
        delay = 1000;
        await readEvents(res.body, (type, data) => {
          if (type === 'rollouts' || type === 'fleet' || type === 'programs') on(type, JSON.parse(data));
        });
      } catch {
        if (stopped) return;
      }
      state('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(15_000, delay * 2);
    }
  };
  void run();
  return () => {
    stopped = true;
    ctrl?.abort();
  };
}

/** Parses a text/event-stream body into (event type, data) pairs. */
async function readEvents(body: ReadableStream<Uint8Array>, on: (type: string, data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) on(type, data.join('\n'));
    }
  }
}
