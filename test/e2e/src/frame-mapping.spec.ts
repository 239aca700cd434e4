// Stack-frame mapping end to end, as a user runs it: a server whose event loop is `main` itself is
// built with dsu build, patched with dsu patch (v2 changes main's loop and a callee's signature; v3
// renames a local of main through patch.yaml), checked, and updated live under client load. The
// requests answered so far live in main's frame, so COUNT after each update shows the frame was
// carried over (it never goes back), and every reply under load must be right.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers, type RunningServer } from './support/fixtures';
import { converse, LineClient } from './support/line-client';
import { startLoad } from './support/load-client';

let work = '';
let runDir = '';
beforeAll(() => {
  work = makeTempDir('dsu-e2e-frames-');
  runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
});
afterAll(async () => {
  await stopAllServers();
  if (work) removeDir(work);
});

const build = async (version: string, extra: string[] = []) => {
  const out = path.join(work, 'mainloop', version);
  const r = await dsu(['build', fixtureSourceDir('mainloop', version), '--out', out, '--label', version, ...extra]);
  expect(r).toMatchObject({ code: 0, json: { program: 'mainloop', version } });
  return out;
};

async function patch(from: string, to: string, spec?: string): Promise<{ dir: string; check: Record<string, unknown> }> {
  const dir = path.join(work, 'mainloop', `${from}-${to}`);
  const args = ['patch', path.join(work, 'mainloop', from), path.join(work, 'mainloop', to), '--out', dir];
  const r = await dsu(spec ? [...args, '--spec', spec] : args);
  expect(r.code).toBe(0);
  const check = (await dsu(['check', dir])).json;
  expect(check).toMatchObject({ verdict: 'approved' });
  return { dir, check };
}

const apply = (bundle: string, pid: number) =>
  dsu(['apply', bundle, '--pid', String(pid), '--timeout-ms', '5000', '--run-dir', runDir]);

/** Lets the load run on a little, stops it and asserts that every request got its right reply. */
async function stopCleanLoad(load: ReturnType<typeof startLoad>, atLeast: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  const result = await load.stop();
  const samples = [...result.wrongSamples, ...result.failureSamples];
  expect({ failed: result.failed, wrong: result.wrong, samples }).toEqual({ failed: 0, wrong: 0, samples: [] });
  expect(result.ok).toBeGreaterThan(atLeast);
}

/** COUNT from its own connection: the number of requests main's loop has answered. */
async function count(port: number): Promise<number> {
  const [reply] = await converse(port, ['COUNT']);
  expect(reply).toMatch(/^\d+$/);
  return Number(reply);
}

describe('mainloop: main itself is replaced while it runs', () => {
  let server: RunningServer;
  let p12 = { dir: '', check: {} as Record<string, unknown> };
  let p23 = { dir: '', check: {} as Record<string, unknown> };
  beforeAll(async () => {
    for (const v of ['v1', 'v2', 'v3']) await build(v);
    p12 = await patch('v1', 'v2');
    p23 = await patch('v2', 'v3', path.join(fixtureSourceDir('mainloop', 'v3'), '..', 'v2-v3.patch.yaml'));
    server = await startServer(path.join(work, 'mainloop', 'v1', 'mainloop'), { env: { DSU_RUN_DIR: runDir } });
  }, 240_000);
  afterAll(() => server?.stop());

  it('the checker allows the points where main is active, saying how its frame is rebuilt', () => {
    const findings = JSON.stringify(p12.check);
    expect(findings).toMatch(/idle ← /);
    expect(JSON.stringify(p23.check)).toMatch(/requests ← served \(renamed/);
  });

  it('applies v1->v2->v3 and rolls back on one pid under load: no failed or wrong reply, COUNT never goes back', async () => {
    expect(await converse(server.port, ['PING', 'VERSION'])).toEqual(['PONG', 'mainloop 1']);
    const load = startLoad({
      port: server.port,
      clients: 4,
      reconnectingClients: 2,
      requestsPerConnection: 5,
      durationMs: 30_000,
      script: [
        { send: 'PING', expect: ['PONG', 'PONG 3'] },
        { send: 'VERSION', expect: ['mainloop 1', 'mainloop 2', 'mainloop 3'] },
        { send: 'COUNT', expect: { regex: '^\\d+$' } },
      ],
    });
    // An idle client keeps a connection of its own open across every update (its slot in main's
    // loop and in the clients table must survive).
    const idle = await LineClient.connect(server.port);
    await new Promise((r) => setTimeout(r, 500));

    const c1 = await count(server.port);
    const a12 = await apply(p12.dir, server.pid);
    expect(a12).toMatchObject({ code: 0, json: { outcome: 'applied', reasons: [] } });
    // main's frame was unwound and rebuilt in the new code (at its poll, or inside serve_client)
    const rebuilt = (a12.json.frames as { frames: string[]; done: boolean }[] | undefined) ?? [];
    expect(rebuilt).toEqual([expect.objectContaining({ done: true, frames: expect.arrayContaining([expect.stringMatching(/^main@/)]) })]);
    expect(await converse(server.port, ['VERSION', 'PING'])).toEqual(['mainloop 2', 'PONG']);
    expect(await count(server.port)).toBeGreaterThan(c1);
    await new Promise((r) => setTimeout(r, 700));
    // the new local of the rebuilt main counts poll timeouts of the new loop (200 ms)
    const [idleCount] = await converse(server.port, ['IDLE']);
    expect(idleCount).toMatch(/^\d+$/);
    expect(await idle.request('VERSION')).toBe('mainloop 2');

    const c2 = await count(server.port);
    const a23 = await apply(p23.dir, server.pid);
    expect(a23).toMatchObject({ code: 0, json: { outcome: 'applied' } });
    expect(await converse(server.port, ['VERSION', 'PING'])).toEqual(['mainloop 3', 'PONG 3']);
    // served became requests (patch.yaml): the count goes on instead of starting from 0
    expect(await count(server.port)).toBeGreaterThan(c2);

    const c3 = await count(server.port);
    const rb = await dsu(['rollback', '--pid', String(server.pid), '--run-dir', runDir]);
    expect(rb).toMatchObject({ code: 0, json: { outcome: 'applied' } });
    expect(await converse(server.port, ['VERSION', 'PING'])).toEqual(['mainloop 2', 'PONG']);
    expect(await count(server.port)).toBeGreaterThan(c3);
    expect(await idle.request('PING')).toBe('PONG');
    idle.close();

    await stopCleanLoad(load, 300);
    expect(server.exited()).toBe(false);
  }, 120_000);
});

describe('mainloop: a frame whose local address is held elsewhere is not rebuilt', () => {
  let server: RunningServer;
  beforeAll(async () => {
    for (const v of ['v4', 'v5']) await build(v);
    server = await startServer(path.join(work, 'mainloop', 'v4', 'mainloop'), { env: { DSU_RUN_DIR: runDir } });
  }, 240_000);
  afterAll(() => server?.stop());

  it('is denied by the checker naming the local and its line, and the program keeps serving', async () => {
    const dir = path.join(work, 'mainloop', 'v4-v5');
    const made = await dsu(['patch', path.join(work, 'mainloop', 'v4'), path.join(work, 'mainloop', 'v5'), '--out', dir]);
    expect(made.code).toBe(0);
    const check = await dsu(['check', dir]);
    expect(check.json).toMatchObject({ verdict: 'rejected' });
    expect(JSON.stringify(check.json)).toMatch(/local 'requests' .*main\.c:89/);
    const refused = await apply(dir, server.pid);
    expect(refused.code).toBe(1);
    expect(await converse(server.port, ['VERSION', 'PING'])).toEqual(['mainloop 4', 'PONG 3']);
    expect(server.exited()).toBe(false);
  }, 120_000);
});

describe('workerpool: the worker loop changes on every thread at once', () => {
  let server: RunningServer;
  let p34 = '';
  const dir = (v: string) => path.join(work, 'workerpool', v);
  beforeAll(async () => {
    for (const v of ['v3', 'v4']) {
      const r = await dsu(['build', fixtureSourceDir('workerpool', v), '--out', dir(v), '--label', v]);
      expect(r.code).toBe(0);
    }
    p34 = dir('v3-v4');
    expect((await dsu(['patch', dir('v3'), dir('v4'), '--out', p34])).code).toBe(0);
    expect((await dsu(['check', p34])).json).toMatchObject({ verdict: 'approved' });
    server = await startServer(path.join(dir('v3'), 'workerpool'), { env: { DSU_RUN_DIR: runDir } });
  }, 240_000);
  afterAll(() => server?.stop());

  it('rebuilds idle and busy workers in the new loop; open connections keep their state', async () => {
    // Three workers busy with open connections (blocked in read), the fourth serves the load.
    const open = await Promise.all([0, 1, 2].map(() => LineClient.connect(server.port)));
    for (const c of open) {
      expect(await c.request('STATS')).toBe('requests=1 work=0');
      expect(await c.request('WORK 10')).toBe('sum of primes below 10 = 17');
    }
    const load = startLoad({
      port: server.port,
      clients: 0,
      reconnectingClients: 2,
      requestsPerConnection: 3,
      durationMs: 30_000,
      script: [
        { send: 'PING', expect: 'PONG 3' },
        { send: 'VERSION', expect: ['workerpool 3', 'workerpool 4'] },
        { send: 'WORK 100', expect: 'sum of primes below 100 = 1060' },
      ],
    });
    await new Promise((r) => setTimeout(r, 300));
    const a34 = await apply(p34, server.pid);
    expect(a34).toMatchObject({ code: 0, json: { outcome: 'applied', reasons: [] } });
    const rebuilt = (a34.json.frames as { frames: string[]; done: boolean }[] | undefined) ?? [];
    // every worker thread: the three busy ones and the one idle or serving the load
    const workers = rebuilt.filter((t) => t.frames.some((f) => f.startsWith('pool.c::worker_main@')));
    expect(workers.length).toBe(4);
    expect(workers.every((t) => t.done)).toBe(true);
    for (const c of open) {
      expect(await c.request('VERSION')).toBe('workerpool 4');
      // the connection's stats live in serve_connection's frame: carried over, not restarted
      expect(await c.request('STATS')).toBe('requests=4 work=1');
      expect(await c.request('WHO')).toMatch(/^worker=[0-3] served=0$/);
      c.close();
    }
    await stopCleanLoad(load, 20);
    expect(await converse(server.port, ['WHO'])).toEqual([expect.stringMatching(/^worker=[0-3] served=[1-9]\d*$/)]);
  }, 120_000);
});
