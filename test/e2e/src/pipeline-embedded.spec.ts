// The embedded default as a user runs it: `dsu up` (one process, in-process bus, SQLite under
// DSU_HOME), `dsu submit` v1 and v2, `dsu install` v1, run it, `dsu rollout` to v2 under load.
// Then `dsu up` is stopped and started again: versions, patches, rollouts and results persist.
// Second: processes on v1 and on v2 rolled out to v3; the v1->v3 patch is made on demand while
// the rollout waits, and `dsu up` is restarted in the middle of it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withControl } from '@dsu/control-client';
import { dsu } from './support/dsu-cli';
import {
  fixtureSourceDir,
  makeTempDir,
  removeDir,
  type RunningServer,
  startServer,
  stopAllServers,
} from './support/fixtures';
import { converse } from './support/line-client';
import { startLoad } from './support/load-client';
import {
  embeddedUp,
  getJson,
  getText,
  startService,
  stopAllServices,
  waitFor,
} from './support/pipeline-services';
import { parseExposition, total } from './support/prometheus';

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

/**
 * What a Prometheus scrape of `dsu up` shows after two submits and one rollout to one process:
 * every stage ran and was timed, events flowed both ways with nothing left behind, one apply
 * with its pause, the process counted on its host.
 */
async function expectMetricsOfOneUpdate(gateway: string): Promise<void> {
  const m = parseExposition(await getText(`${gateway}/metrics`));
  for (const stage of ['build', 'patch', 'check'])
    expect({ stage, n: total(m, 'dsu_stage_duration_seconds_count', { stage, outcome: 'ok' }) }).toEqual({
      stage,
      n: stage === 'build' ? 2 : 1,
    });
  for (const topic of [
    'dsu.build.requested',
    'dsu.build.completed',
    'dsu.patch.generated',
    'dsu.update.command',
  ]) {
    expect({ topic, produced: total(m, 'dsu_events_produced_total', { topic }) > 0 }).toEqual({
      topic,
      produced: true,
    });
    expect({
      topic,
      consumed: total(m, 'dsu_events_consumed_total', { topic, outcome: 'handled' }) > 0,
    }).toEqual({
      topic,
      consumed: true,
    });
  }
  expect(total(m, 'dsu_applies_total', { outcome: 'applied' })).toBe(1);
  // One pause observed (its value may be 0 µs: a process idle in poll pauses nothing).
  expect(total(m, 'dsu_update_pause_seconds_count', { outcome: 'applied' })).toBe(1);
  expect(total(m, 'dsu_fleet_processes', { host: 'embedded', program: 'pollserver' })).toBe(1);
  expect(total(m, 'dsu_events_dead_lettered_total')).toBe(0);
  expect(total(m, 'dsu_consumer_lag', { topic: 'dsu.build.requested' })).toBe(0);
  expect(m.some((s) => s.name === 'dsu_outbox_backlog' && s.labels.producer === 'compiler')).toBe(true);
  expect(total(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
}

describe('dsu up: the embedded pipeline', () => {
  it('runs compile -> patch -> check -> apply in one process, and keeps its state across a restart', async () => {
    const { gateway, runDir, env } = await embeddedUp(work, 'embedded', { heartbeatMs: 300 });
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
    await expectMetricsOfOneUpdate(gateway);

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

interface PatchRow {
  requestId: string;
  fromVersion: string;
  toVersion: string;
  status: string;
  patchId: string | null;
  verdict: string | null;
}
interface RolloutRow {
  rolloutId: string;
  status: string;
  notes: string[];
  targets: { host: string; pid: number; state: string; patchId: string | null }[];
  results: { host: string; pid: number; outcome: string; patchId: string | null }[];
}

describe('dsu rollout to processes on any older version', () => {
  it('brings processes on v1 and on v2 to v3, generating the v1->v3 patch on demand, across a restart of dsu up', async () => {
    const { gateway, runDir, env } = await embeddedUp(work, 'embedded', {
      suffix: '-chain',
      heartbeatMs: 300,
    });
    const cli = (args: string[]) => dsu(args, { ...env, DSU_GATEWAY: gateway });
    let up = await startService('up', env, work, 'chain-up-1');
    const submit = (v: string) =>
      cli([
        'submit',
        fixtureSourceDir('pollserver', v),
        '--program',
        'pollserver',
        '--version',
        v,
        '--update-point',
        'serve:loop',
      ]);
    expect((await submit('v1')).json).toMatchObject({ build: { status: 'built' }, patch: null });
    expect((await submit('v2')).json).toMatchObject({ patch: { verdict: 'approved' } });
    expect((await submit('v3')).json).toMatchObject({ patch: { verdict: 'approved' } });
    const patchesBefore = await getJson<PatchRow[]>(`${gateway}/patches`);
    expect(patchesBefore.map((p) => `${p.fromVersion}->${p.toVersion}`)).toEqual(['v1->v2', 'v2->v3']);
    const v2v3 = patchesBefore[1].patchId as string;

    const servers: RunningServer[] = [];
    for (const v of ['v1', 'v2']) {
      expect((await cli(['install', 'pollserver', v, '--out', path.join(work, `chain-${v}`)])).code).toBe(0);
      servers.push(
        await startServer(path.join(work, `chain-${v}`, 'pollserver'), { env: { DSU_RUN_DIR: runDir } }),
      );
    }
    const loads = servers.map((server) =>
      startLoad({
        port: server.port,
        clients: 3,
        durationMs: 240_000,
        script: [
          { send: 'SET k{c} v{c}', expect: 'OK' },
          { send: 'GET k{c}', expect: 'v{c}' },
          { send: 'VERSION', expect: ['pollserver 1', 'pollserver 2', 'pollserver 3'] },
        ],
      }),
    );
    await waitFor('the inventory to list both processes', async () => {
      const procs = (
        await getJson<{ processes: { pid: number; version: string | null }[] }[]>(`${gateway}/inventory`)
      )
        .flatMap((h) => h.processes)
        .map((p) => `${p.pid}:${p.version}`);
      return procs.includes(`${servers[0].pid}:v1`) && procs.includes(`${servers[1].pid}:v2`);
    });

    // Not every process runs v3 yet: the proof fails and names each process that does not.
    const unproven = await cli(['fleet', 'verify', 'pollserver', '--to', 'v3']);
    expect(unproven).toMatchObject({ code: 1, json: { error: { code: 'not-verified' } } });
    for (const s of servers)
      expect((unproven.json.error as { reasons: string[] }).reasons).toContainEqual(
        expect.stringMatching(new RegExp(`^pid ${s.pid} on embedded runs build`)),
      );

    const rollout = cli(['rollout', 'pollserver', '--to', 'v3']);
    // While the v1 process waits for its patch, stop `dsu up` and start it again.
    const waiting = await waitFor(
      'the v1 process to wait for its patch',
      async () =>
        (await getJson<RolloutRow[]>(`${gateway}/rollouts`)).find((r) =>
          r.targets.some((t) => t.pid === servers[0].pid && t.state === 'waiting'),
        ),
      120_000,
      50,
    );
    const stoppingAt = new Date().toISOString();
    await up.stop('SIGTERM');
    expect(up.log()).not.toMatch(/"level":"(error|fatal)"/);
    up = await startService('up', env, work, 'chain-up-2');
    const r = await rollout;
    const lrs = await Promise.all(loads.map((l) => l.stop()));

    const patches = await getJson<PatchRow[]>(`${gateway}/patches`);
    // The v1->v3 patch was made on demand, once, and approved.
    expect(patches.map((p) => `${p.fromVersion}->${p.toVersion}:${p.status}:${p.verdict}`)).toEqual([
      'v1->v2:generated:approved',
      'v2->v3:generated:approved',
      'v1->v3:generated:approved',
    ]);
    const v1v3 = patches[2].patchId as string;
    expect(r).toMatchObject({
      code: 0,
      json: { rolloutId: waiting.rolloutId, status: 'completed', notes: [] },
    });
    const byPid = Object.fromEntries(
      (r.json.results as { pid: number; outcome: string; patchId: string }[]).map((x) => [x.pid, x]),
    );
    expect(Object.keys(byPid)).toHaveLength(2);
    expect(byPid[servers[0].pid]).toMatchObject({ host: 'embedded', outcome: 'applied', patchId: v1v3 });
    expect(byPid[servers[1].pid]).toMatchObject({ host: 'embedded', outcome: 'applied', patchId: v2v3 });
    for (const lr of lrs) expect({ failed: lr.failed, wrong: lr.wrong }).toEqual({ failed: 0, wrong: 0 });
    // Both run v3 now, each with exactly the one patch it was sent.
    const status = await Promise.all(servers.map((s) => withControl(s.pid, runDir, (c) => c.status())));
    expect(status.map((s) => s.patches.map((p) => p.id))).toEqual([[v1v3], [v2v3]]);
    for (const s of servers) expect(await converse(s.port, ['VERSION'])).toEqual(['pollserver 3']);
    // Exactly one update result per process, in the registry too.
    const results = await getJson<{ pid: number; rolloutId: string; reportedAt: string }[]>(
      `${gateway}/results`,
    );
    expect(results.map((x) => x.pid).sort()).toEqual(servers.map((s) => s.pid).sort());
    // The v1 process was still waiting when `dsu up` was told to stop: its part was finished after
    // that — by the stopping one while it drained (HTTP closes before the pipeline stops) or by
    // the restarted one — once, as the results above show.
    expect((results.find((x) => x.pid === servers[0].pid)?.reportedAt ?? '') > stoppingAt).toBe(true);
    expect((await getJson<RolloutRow[]>(`${gateway}/rollouts`)).map((x) => x.status)).toEqual(['completed']);
    // Every live process answers, from its own runtime (a heartbeat after the command started), v3.
    const proven = await cli(['fleet', 'verify', 'pollserver', '--to', 'v3']);
    expect(proven).toMatchObject({ code: 0, json: { verified: true, version: 'v3' } });
    expect(
      (proven.json.processes as { pid: number; onTarget: boolean }[]).map((p) => [p.pid, p.onTarget]).sort(),
    ).toEqual(servers.map((s) => [s.pid, true]).sort());

    // Rolling out v3 again targets nobody and generates nothing.
    const again = await cli(['rollout', 'pollserver', '--to', 'v3']);
    expect(again).toMatchObject({
      code: 1,
      json: { error: { code: 'nothing-to-update', message: expect.stringMatching(/already run v3/) } },
    });
    const allowed = await cli(['rollout', 'pollserver', '--to', 'v3', '--allow-empty']);
    expect(allowed).toMatchObject({ code: 0, json: { status: 'completed', results: [] } });
    expect(await getJson<PatchRow[]>(`${gateway}/patches`)).toHaveLength(3);
    await up.stop('SIGTERM');
    expect(up.log()).not.toMatch(/"level":"(error|fatal)"/);
  });
});
