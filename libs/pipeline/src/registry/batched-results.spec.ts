import { Topics, type UpdateResultV1 } from '@dsu/events';
import { UpdateResultEntity } from '@dsu/persistence';
import {
  approvePatch,
  type RegistryHarness,
  seedTwoVersionsAndAProcess,
  startRegistry,
  waitFor,
} from '../../test/registry-harness';
import type { Registry } from './registry';

// An applier reports a command's processes in batches (dsu.update.result.v2): each batch is
// recorded in one transaction, duplicates across batches are ignored, and the last one
// finishes the rollout.
describe('Registry: batched update results', () => {
  let h: RegistryHarness;
  let registry: Registry;

  beforeAll(async () => {
    h = await startRegistry('batched');
    ({ registry } = h);
    await seedTwoVersionsAndAProcess(h);
  });
  afterAll(() => h.stop());

  it('records a batch of 50 results in one transaction and completes the rollout with the next batch', async () => {
    const pids = Array.from({ length: 120 }, (_, i) => 1000 + i);
    const proc = (pid: number) => ({ pid, program: 'p', buildId: 'b1', baseBuildId: 'b1', patches: [] });
    await h.publish(Topics.agentHeartbeat, { host: 'h1', runDir: '/r', processes: pids.map(proc) }, 'h1');
    await waitFor('the inventory', async () => (await registry.listInventory())[0]?.processes.length === 120);
    const requestId = (h.of(Topics.patchRequested)[0].data as { requestId: string }).requestId;
    await approvePatch(h, requestId, 'P12');
    const { rolloutId } = await registry.requestRollout('p', 'v2');
    const cmd = await waitFor('the command', async () => h.of(Topics.updateCommand)[0]);
    expect((cmd.data as { pids: number[] }).pids).toEqual(pids);

    const result = (pid: number): UpdateResultV1 => ({
      rolloutId,
      host: 'h1',
      pid,
      program: 'p',
      patchId: 'P12',
      outcome: 'applied',
      pauseUs: 3,
      updatePoint: 'poll',
      reasons: [],
      buildId: 'b2',
    });
    // pid 1000 reports a data update: what it transformed is kept with its result.
    const withData = (pid: number) =>
      pid === 1000 ? { ...result(pid), instances: 4096, transformUs: 812 } : result(pid);
    const batch = (ps: number[]) => ({ rolloutId, host: 'h1', program: 'p', results: ps.map(withData) });
    await h.publish(Topics.updateResult, batch(pids.slice(0, 50)));
    await waitFor('the first batch', async () => (await registry.listResults(rolloutId)).length === 50);
    const rows = await h.running.infra.ds.getRepository(UpdateResultEntity).findBy({ rolloutId });
    // one event, one transaction: every row of the batch carries the batch's event id
    expect(new Set(rows.map((r) => r.eventId)).size).toBe(1);
    expect((await registry.getRollout(rolloutId)).status).toBe('running');

    // the next batch repeats one pid (a redelivered command reports it again): recorded once
    await h.publish(Topics.updateResult, batch(pids.slice(49)));
    const done = await waitFor('the rollout to finish', async () => {
      const r = await registry.getRollout(rolloutId);
      return r.completedAt ? r : undefined;
    });
    expect(done.status).toBe('completed');
    expect(done.results.map((r) => r.pid).sort((a, b) => a - b)).toEqual(pids);
    expect(done.targets.every((t) => t.state === 'reported')).toBe(true);
    const stored = await registry.listResults(rolloutId);
    expect(stored.find((r) => r.pid === 1000)).toMatchObject({ instances: 4096, transformUs: 812 });
    expect(stored.find((r) => r.pid === 1001)).toMatchObject({ instances: null, transformUs: null });
    expect(done.results.find((r) => r.pid === 1000)?.instances).toBe(4096);
  });
});
