// The embedded default survives `kill -9` (the user's report): `dsu up` is killed while a
// rollout waits for its patch, and a `dsu up` restarted on the same DSU_HOME finishes the patch,
// the check and the rollout; the process ends on v2 with exactly one patch applied. Before the
// in-process bus delivered through the outbox, the patch stayed `requested` and the rollout
// `running` forever (the request had been marked sent and was lost with the process's memory).
import * as path from 'node:path';
import { withControl } from '@dsu/control-client';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers } from './support/fixtures';
import { converse } from './support/line-client';
import { embeddedUp, getJson, startService, stopAllServices, waitFor } from './support/pipeline-services';

jest.setTimeout(240_000);

let work = '';
beforeAll(() => {
  work = makeTempDir('dsu-e2e-crash-');
});
afterAll(async () => {
  await stopAllServers();
  await stopAllServices();
  if (work && !process.env.DSU_E2E_KEEP) removeDir(work);
});

interface RolloutRow {
  rolloutId: string;
  status: string;
  targets: { pid: number; state: string }[];
}

describe('dsu up: kill -9 in the middle of a rollout', () => {
  it('a restart on the same DSU_HOME finishes the patch, the check and the rollout', async () => {
    const { gateway, runDir, env } = await embeddedUp(work, 'crash-host', { heartbeatMs: 300 });
    const cli = (args: string[]) => dsu(args, { ...env, DSU_GATEWAY: gateway });
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
    const up = await startService('up', env, work, 'up-1');
    expect((await submit('v1')).json).toMatchObject({ build: { status: 'built' }, patch: null });
    expect((await cli(['install', 'pollserver', 'v1', '--out', path.join(work, 'v1')])).code).toBe(0);
    const server = await startServer(path.join(work, 'v1', 'pollserver'), { env: { DSU_RUN_DIR: runDir } });
    await waitFor('the inventory to list the process', async () =>
      (await getJson<{ processes: { pid: number }[] }[]>(`${gateway}/inventory`)).some((h) =>
        h.processes.some((p) => p.pid === server.pid),
      ),
    );

    // v2 is submitted; as soon as it is built (its patch from v1 not yet decided) the rollout
    // starts, so its process waits for that patch; `dsu up` dies right then.
    const submitted = submit('v2').catch((err: Error) => ({ code: -1, json: { error: err.message } }));
    await waitFor(
      'v2 to be built',
      async () =>
        (await getJson<{ status: string }>(`${gateway}/programs/pollserver/versions/v2`).catch(() => null))
          ?.status === 'built',
      120_000,
      50,
    );
    const rollout = cli(['rollout', 'pollserver', '--to', 'v2']);
    const planned = await waitFor(
      'the rollout to target the process',
      async () =>
        (await getJson<RolloutRow[]>(`${gateway}/rollouts`))[0]?.targets.find((t) => t.pid === server.pid),
      60_000,
      20,
    );
    await up.stop('SIGKILL');
    // What the killed process left: the request not answered yet, or at least the rollout open.
    expect(['waiting', 'commanded']).toContain(planned.state);

    // Both CLI calls wait for the gateway to come back (it is not awaited before: the submit
    // would wait out its whole time limit for a gateway nobody restarts).
    await startService('up', env, work, 'up-2');
    expect((await submitted).json).toMatchObject({ build: { status: 'built' } });
    const r = await rollout;
    expect(r).toMatchObject({
      code: 0,
      json: {
        status: 'completed',
        notes: [],
        results: [{ host: 'crash-host', pid: server.pid, outcome: 'applied' }],
      },
    });
    const patches = await getJson<
      { fromVersion: string; status: string; verdict: string | null; patchId: string }[]
    >(`${gateway}/patches`);
    expect(patches.map((p) => `${p.fromVersion}:${p.status}:${p.verdict}`)).toEqual([
      'v1:generated:approved',
    ]);
    // Updated exactly once, to v2.
    const status = await withControl(server.pid, runDir, (c) => c.status());
    expect(status.patches.map((p) => p.id)).toEqual([patches[0].patchId]);
    expect(await converse(server.port, ['VERSION'])).toEqual(['pollserver 2']);
    expect((await getJson<RolloutRow[]>(`${gateway}/rollouts`)).map((x) => x.status)).toEqual(['completed']);
  });
});
