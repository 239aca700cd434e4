// The embedded default as a user runs it: `dsu up` (one process, in-process bus, SQLite under
// DSU_HOME), `dsu submit` v1 and v2, `dsu install` v1, run it, `dsu rollout` to v2 under load.
// Then `dsu up` is stopped and started again: versions, patches, rollouts and results persist.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers } from './support/fixtures';
import { startLoad } from './support/load-client';
import { freePort, getJson, startService, stopAllServices, waitFor } from './support/pipeline-services';

jest.setTimeout(300_000);

let work = '';
beforeAll(() => {
  work = makeTempDir('dsu-e2e-embedded-');
});
afterAll(async () => {
  await stopAllServers();
  await stopAllServices();
  if (work) removeDir(work);
});

describe('dsu up: the embedded pipeline', () => {
  it('runs compile -> patch -> check -> apply in one process, and keeps its state across a restart', async () => {
    const port = await freePort();
    const gateway = `http://127.0.0.1:${port}`;
    const runDir = path.join(work, 'run');
    fs.mkdirSync(runDir, { mode: 0o700 });
    const env = {
      DSU_HOME: path.join(work, 'home'),
      DSU_RUN_DIR: runDir,
      DSU_GATEWAY_PORT: String(port),
      DSU_HOST_ID: 'embedded',
      DSU_HEARTBEAT_MS: '300',
      KAFKA_BROKERS: '',
      DATABASE_URL: '',
    };
    const cli = (args: string[]) => dsu(args, { ...env, DSU_GATEWAY: gateway });
    let up = await startService('up', env, work, 'up-1');

    const v1 = await cli([
      'submit',
      fixtureSourceDir('pollserver', 'v1'),
      '--program',
      'pollserver',
      '--version',
      'v1',
      '--update-point',
      'serve:loop',
    ]);
    expect(v1.json).toMatchObject({ build: { status: 'built' }, patch: null });
    expect((await cli(['install', 'pollserver', 'v1', '--out', path.join(work, 'v1')])).code).toBe(0);
    const server = await startServer(path.join(work, 'v1', 'pollserver'), { env: { DSU_RUN_DIR: runDir } });
    const load = startLoad({
      port: server.port,
      clients: 4,
      durationMs: 120_000,
      script: [
        { send: 'SET k{c} v{i}', expect: 'OK' },
        { send: 'VERSION', expect: ['pollserver 1', 'pollserver 2'] },
      ],
    });
    const v2 = await cli([
      'submit',
      fixtureSourceDir('pollserver', 'v2'),
      '--program',
      'pollserver',
      '--version',
      'v2',
      '--update-point',
      'serve:loop',
    ]);
    expect(v2).toMatchObject({
      code: 0,
      json: { build: { status: 'built' }, patch: { verdict: 'approved' } },
    });
    await waitFor('the inventory to list the process', async () =>
      (await getJson<{ processes: { pid: number }[] }[]>(`${gateway}/inventory`)).some((h) =>
        h.processes.some((p) => p.pid === server.pid),
      ),
    );
    const r = await cli(['rollout', 'pollserver', '--to', 'v2']);
    const lr = await load.stop();
    expect(r).toMatchObject({
      code: 0,
      json: {
        patchId: (v2.json.patch as { id: string }).id,
        results: [{ host: 'embedded', pid: server.pid, outcome: 'applied' }],
      },
    });
    expect({ failed: lr.failed, wrong: lr.wrong }).toEqual({ failed: 0, wrong: 0 });

    const before = {
      versions: (await cli(['versions', 'pollserver'])).json,
      rollouts: (await cli(['rollouts'])).json,
      patches: await getJson(`${gateway}/patches`),
      verdicts: await getJson(`${gateway}/verdicts`),
      results: await getJson(`${gateway}/results`),
    };
    await up.stop('SIGTERM');
    expect(up.log()).not.toMatch(/"level":"(error|fatal)"/);
    up = await startService('up', env, work, 'up-2');
    const after = {
      versions: (await cli(['versions', 'pollserver'])).json,
      rollouts: (await cli(['rollouts'])).json,
      patches: await getJson(`${gateway}/patches`),
      verdicts: await getJson(`${gateway}/verdicts`),
      results: await getJson(`${gateway}/results`),
    };
    expect(after).toEqual(before);
    expect(after.versions).toHaveLength(2);
    expect(after.rollouts).toMatchObject([{ status: 'completed', results: [{ outcome: 'applied' }] }]);
    // A version that does not compile: a clear error with the compiler's diagnostics; nothing else changes.
    const broken = path.join(work, 'broken');
    fs.cpSync(fixtureSourceDir('pollserver', 'v2'), broken, { recursive: true });
    fs.appendFileSync(path.join(broken, 'commands.c'), '\nint broken(void) { return }\n');
    const bad = await cli(['submit', broken, '--program', 'pollserver', '--version', 'v3-broken']);
    expect(bad).toMatchObject({
      code: 1,
      json: {
        build: { status: 'failed', buildId: null, error: expect.stringMatching(/failed/) },
        patch: null,
      },
    });
    const failed = await getJson<{ status: string; diagnostics: string }>(
      `${gateway}/programs/pollserver/versions/v3-broken`,
    );
    expect(failed).toMatchObject({
      status: 'failed',
      diagnostics: expect.stringMatching(/commands\.c.*error/),
    });
    expect((await cli(['rollout', 'pollserver', '--to', 'v3-broken'])).code).not.toBe(0);
    expect((await cli(['rollouts'])).json).toHaveLength(1);

    // The OpenAPI document describes the API.
    const doc = await getJson<{ paths: Record<string, unknown> }>(`${gateway}/openapi.json`);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/programs/{program}/versions/{version}',
        '/rollouts',
        '/inventory',
        '/artifacts/{sha256}',
      ]),
    );
  });
});
