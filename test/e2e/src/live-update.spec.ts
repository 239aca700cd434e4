// Live code updates end to end, as a user runs them: `dsu build` each version, start v1, put it
// under continuous client load, `dsu patch` + `dsu apply` while the load runs, and check that the
// process (same pid) moves to the new code with zero failed or wrong replies; then chain, roll
// back, and have an update refused while a function it replaces is active.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers, type RunningServer } from './support/fixtures';
import { converse, LineClient } from './support/line-client';
import { startLoad } from './support/load-client';

let work = '';
let runDir = '';
beforeAll(() => {
  work = makeTempDir('dsu-e2e-live-');
  runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
});
afterAll(async () => {
  await stopAllServers();
  if (work) removeDir(work);
});

async function build(program: string, version: string, extra: string[] = []): Promise<string> {
  const out = path.join(work, program, version);
  const r = await dsu(['build', fixtureSourceDir(program, version), '--out', out, '--label', version, ...extra]);
  expect(r).toMatchObject({ code: 0, json: { program, version } });
  return out;
}

async function patch(program: string, from: string, to: string): Promise<string> {
  const out = path.join(work, program, `${from}-${to}`);
  const r = await dsu(['patch', path.join(work, program, from), path.join(work, program, to), '--out', out]);
  expect(r.code).toBe(0);
  expect((await dsu(['check', out])).json).toMatchObject({ verdict: 'approved' });
  return out;
}

const start = (program: string, version: string): Promise<RunningServer> =>
  startServer(path.join(work, program, version, program), { env: { DSU_RUN_DIR: runDir } });

const apply = (bundle: string, pid: number, timeoutMs = 5000) =>
  dsu(['apply', bundle, '--pid', String(pid), '--timeout-ms', String(timeoutMs), '--run-dir', runDir]);

describe('pollserver: live updates under load', () => {
  let server: RunningServer;
  let p12 = '';
  let p23 = '';
  beforeAll(async () => {
    // Configured without touching the source: an update point at the head of serve()'s loop.
    for (const v of ['v1', 'v2', 'v3']) await build('pollserver', v, ['--update-point', 'serve:loop']);
    p12 = await patch('pollserver', 'v1', 'v2');
    p23 = await patch('pollserver', 'v2', 'v3');
    server = await start('pollserver', 'v1');
  }, 240_000);
  afterAll(() => server?.stop());

  it('applies v1->v2 and v2->v3 and rolls back, with no failed or wrong reply', async () => {
    expect(await converse(server.port, ['SET kept 42', 'VERSION'])).toEqual(['OK', 'pollserver 1']);
    const load = startLoad({
      port: server.port,
      clients: 6,
      reconnectingClients: 2,
      requestsPerConnection: 5,
      durationMs: 30_000,
      script: [
        { send: 'SET k{c} v{c}', expect: 'OK' },
        { send: 'GET k{c}', expect: 'v{c}' },
        { send: 'PING', expect: ['PONG', 'PONG 3'] },
        { send: 'VERSION', expect: ['pollserver 1', 'pollserver 2', 'pollserver 3'] },
        { send: 'GET missing{c}', expect: ['NOT_FOUND', 'NOT_FOUND missing{c}'] },
        { send: 'GET kept', expect: '42' },
      ],
    });
    await new Promise((r) => setTimeout(r, 500));

    const a12 = await apply(p12, server.pid);
    expect(a12).toMatchObject({ code: 0, json: { outcome: 'applied', reasons: [], pid: server.pid } });
    expect(a12.json.pauseUs).toEqual(expect.any(Number));
    expect(await converse(server.port, ['VERSION', 'ECHO hi', 'GET nope', 'GET kept'])).toEqual(['pollserver 2', 'hi', 'NOT_FOUND nope', '42']);

    const a23 = await apply(p23, server.pid);
    expect(a23).toMatchObject({ code: 0, json: { outcome: 'applied' } });
    expect(await converse(server.port, ['PING', 'VERSION', 'GET nope'])).toEqual(['PONG 3', 'pollserver 3', 'NOT_FOUND nope']);

    const rb = await dsu(['rollback', '--pid', String(server.pid), '--run-dir', runDir]);
    expect(rb).toMatchObject({ code: 0, json: { outcome: 'applied' } });
    expect(await converse(server.port, ['PING', 'VERSION', 'ECHO again'])).toEqual(['PONG', 'pollserver 2', 'again']);

    await new Promise((r) => setTimeout(r, 300));
    const result = await load.stop();
    expect({ failed: result.failed, wrong: result.wrong, samples: [...result.wrongSamples, ...result.failureSamples] }).toEqual({ failed: 0, wrong: 0, samples: [] });
    expect(result.ok).toBeGreaterThan(500);
    expect(server.exited()).toBe(false);

    const status = await dsu(['status', '--pid', String(server.pid), '--run-dir', runDir]);
    expect(status.json).toMatchObject({ pid: server.pid, program: 'pollserver' });
    expect((status.json.patches as unknown[]).length).toBe(1);
    expect(status.json.updatePoints).toContain('serve:loop');
    const ps = await dsu(['ps', '--run-dir', runDir]);
    expect((ps.json as unknown as { pid: number }[]).map((p) => p.pid)).toContain(server.pid);
  }, 120_000);

  it('refuses a patch built for another version and keeps running the current code', async () => {
    // The process now runs v2; the v2->v3 patch applies, v1->v2 must be refused.
    const again = await apply(p12, server.pid);
    expect(again.code).toBe(1);
    expect(again.json.outcome).toBe('refused');
    expect(await converse(server.port, ['VERSION'])).toEqual(['pollserver 2']);
  }, 60_000);
});

describe('workerpool: an update waits while a replaced function is active', () => {
  let server: RunningServer;
  let p12 = '';
  beforeAll(async () => {
    for (const v of ['v1', 'v2']) await build('workerpool', v);
    p12 = await patch('workerpool', 'v1', 'v2');
    server = await start('workerpool', 'v1');
  }, 240_000);
  afterAll(() => server?.stop());

  it('is refused with the function and thread named, and applies once the function returns', async () => {
    const sleeper = await LineClient.connect(server.port);
    try {
      const slept = sleeper.request('SLEEP 2500', 10_000);
      slept.catch(() => undefined); // awaited below; keeps an early failure from leaving it unhandled
      await new Promise((r) => setTimeout(r, 200));
      const refused = await apply(p12, server.pid, 400);
      expect(refused.code).toBe(1);
      expect(refused.json.outcome).toBe('timeout');
      // The checker denied 'nanosleep' (handle_request may be active there): the runtime waits for
      // the worker to leave it; its own stack walk would name the function if the point were allowed.
      expect(refused.json.reasons?.join('\n')).toMatch(
        /handle_request.*active on thread \d+ 'worker-\d'|thread \d+ 'worker-\d' is blocked in nanosleep, which this patch does not allow/,
      );
      expect(await converse(server.port, ['VERSION'])).toEqual(['workerpool 1']);
      // `dsu stacks` shows why: a worker is inside handle_request (sleeping in a wrapped call).
      const stacks = (await dsu(['stacks', '--pid', String(server.pid), '--run-dir', runDir])).json as unknown as {
        threads: { name: string; frames: { function: string | null }[] | null }[];
      };
      const busy = stacks.threads.find((t) => t.frames?.some((f) => f.function === 'handle_request'));
      expect(busy?.name).toMatch(/^worker-\d$/);

      const applied = apply(p12, server.pid, 10_000);
      expect(await slept).toBe('SLEPT 2500');
      expect(await applied).toMatchObject({ code: 0, json: { outcome: 'applied' } });
      expect(await sleeper.request('VERSION')).toBe('workerpool 2');
      expect(await converse(server.port, ['WORK 10'])).toEqual(['sum of primes below 10 = 17']);
    } finally {
      sleeper.destroy();
    }
  }, 60_000);
});

describe('multifile: same-named statics in two files', () => {
  it('changes only the static function of the file the new version changed', async () => {
    const v1 = await build('multifile', 'v1');
    await build('multifile', 'v2');
    const bundle = await patch('multifile', 'v1', 'v2');
    const manifest = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8'));
    const describes = manifest.functions.filter((f: { key: string }) => f.key.endsWith('::describe'));
    expect(describes).toEqual([expect.objectContaining({ key: 'store.c::describe', change: 'body' })]);
    expect(fs.existsSync(path.join(v1, 'multifile'))).toBe(true);

    const server = await start('multifile', 'v1');
    try {
      const before = await converse(server.port, ['INFO', 'VERSION']);
      expect((await apply(bundle, server.pid)).json.outcome).toBe('applied');
      const after = await converse(server.port, ['INFO', 'VERSION']);
      expect(after[1]).toBe('multifile 2');
      expect(after[0]).not.toBe(before[0]);
      expect(after[0]).toContain('store=sorted fixed array');
      // The other file's describe() kept its text.
      expect(after[0].split(';')[0]).toBe(before[0].split(';')[0]);
    } finally {
      await server.stop();
    }
  }, 240_000);
});
