import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type GatewayApp, startGatewayApp } from '../../test/gateway-app';
import { serveDashboard } from './serve-dashboard';

/** Reads server-sent events from a streaming response until `until` is satisfied or `ms` pass. */
async function readEvents(
  res: Response,
  until: (events: { type: string; data: unknown }[]) => boolean,
  ms = 10_000,
): Promise<{ type: string; data: unknown }[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: { type: string; data: unknown }[] = [];
  let buf = '';
  const deadline = Date.now() + ms;
  try {
    while (!until(events) && Date.now() < deadline) {
      const { value, done } = await Promise.race([
        reader.read(),
        new Promise<{ value: undefined; done: true }>((r) =>
          setTimeout(() => r({ value: undefined, done: true }), deadline - Date.now()),
        ),
      ]);
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const type = /^event: ?(.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: ?(.*)$/m.exec(block)?.[1];
        if (data !== undefined) events.push({ type, data: JSON.parse(data) });
      }
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

describe('the dashboard: its files and its live feed (real HTTP, SQLite)', () => {
  let gw: GatewayApp;
  let url: string;
  let token: string;
  const saved = process.env.DSU_DASHBOARD_REFRESH_MS;
  beforeAll(async () => {
    process.env.DSU_DASHBOARD_REFRESH_MS = '200';
    gw = await startGatewayApp(['gateway'], {
      configure: (app, home) => {
        const dist = join(home, 'dist');
        mkdirSync(join(dist, 'assets'), { recursive: true });
        writeFileSync(join(dist, 'index.html'), '<!doctype html><title>dsu</title>');
        writeFileSync(join(dist, 'assets', 'index-abc.js'), 'console.log(1)');
        serveDashboard(app, { DSU_DASHBOARD_DIR: dist });
      },
    });
    ({ url, token } = gw);
  });
  afterAll(async () => {
    await gw.close();
    process.env.DSU_DASHBOARD_REFRESH_MS = saved;
  });

  it('serves the page and its assets to anyone, with a content security policy; nothing else', async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(await page.text()).toContain('<title>dsu</title>');
    const js = await fetch(`${url}/assets/index-abc.js`);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    expect((await fetch(`${url}/assets/../token`)).status).toBe(404);
    expect((await fetch(`${url}/assets/nosuch.js`)).status).toBe(404);
    // The API stays behind its token.
    expect((await fetch(`${url}/programs`)).status).toBe(401);
  });

  it('says how to build the page when it is missing', async () => {
    const bare = await startGatewayApp(['gateway'], {
      configure: (app, home) => serveDashboard(app, { DSU_DASHBOARD_DIR: join(home, 'nowhere') }),
    });
    try {
      const res = await fetch(`${bare.url}/`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: string }).error).toMatch(/nx run dashboard:build/);
    } finally {
      await bare.close();
    }
  });

  it('streams every topic at connect, then what changes, to a token holder only', async () => {
    expect((await fetch(`${url}/stream`)).status).toBe(401);
    const res = await fetch(`${url}/stream`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const registered = fetch(`${url}/programs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'streamed' }),
    });
    const events = await readEvents(res, (es) =>
      es.some((e) => e.type === 'programs' && JSON.stringify(e.data).includes('"streamed"')),
    );
    expect((await registered).status).toBe(201);
    expect(
      events
        .slice(0, 3)
        .map((e) => e.type)
        .sort(),
    ).toEqual(['fleet', 'programs', 'rollouts']);
    expect(events.find((e) => e.type === 'fleet')?.data).toMatchObject({
      staleAfterMs: expect.any(Number),
      hosts: [],
    });
    expect(events.filter((e) => e.type === 'programs').at(-1)?.data).toEqual([
      { program: 'streamed', versions: [] },
    ]);
  });
});
