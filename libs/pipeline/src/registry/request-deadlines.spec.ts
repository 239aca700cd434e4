import { Topics } from '@dsu/events';
import type { RunningServices } from '../pipeline';
import { RequestDeadlines } from './request-deadlines';
import {
  approvePatch,
  type RegistryHarness,
  seedTwoVersionsAndAProcess,
  startRegistry,
  waitFor,
} from '../../test/registry-harness';
import type { Registry } from './registry';

// Requests whose answer never comes (a patcher that is gone, an applier that never reports) end
// `failed` with the reason once their deadline passed, instead of waiting forever.
describe('RequestDeadlines', () => {
  let h: RegistryHarness;
  let running: RunningServices;
  let registry: Registry;
  const of = (topic: string) => h.of(topic);
  const publish = (topic: string, data: unknown, key = 'p') => h.publish(topic, data, key);

  beforeAll(async () => {
    h = await startRegistry('deadlines');
    ({ running, registry } = h);
    await seedTwoVersionsAndAProcess(h);
  });
  afterAll(() => h.stop());

  it('ends a patch request with no result, and the rollout waiting for it, with the reason', async () => {
    const { rolloutId } = await registry.requestRollout('p', 'v2');
    await waitFor(
      'the rollout to wait',
      async () => (await registry.getRollout(rolloutId)).targets[0]?.state === 'waiting',
    );
    const deadlines = new RequestDeadlines(running.infra, registry, () => undefined);
    // Before the deadline nothing changes.
    expect(await deadlines.expire(Date.now() + 60_000)).toEqual({ patches: 0, rollouts: 0 });
    expect(await deadlines.expire(Date.now() + 31 * 60_000)).toEqual({ patches: 1, rollouts: 0 });
    expect((await registry.listPatches('p'))[0]).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(
        /^no patch result within 30 minutes .*DSU_PATCH_DEADLINE_MS.*roll out again/,
      ),
    });
    const r = await registry.getRollout(rolloutId);
    expect(r).toMatchObject({
      status: 'failed',
      notes: [expect.stringMatching(/pid 10 on h1 .*no patch result within/)],
    });
  });

  it('ends a rollout whose host never reports, naming the host and what to do', async () => {
    const { requestId } = await registry.requestPatch('p', 'v1', 'v2'); // the failed pair, asked again
    await approvePatch(h, requestId, 'P12');
    await waitFor('the verdict', async () =>
      (await registry.listPatches('p')).some((p) => p.verdict === 'approved'),
    );
    const { rolloutId } = await registry.requestRollout('p', 'v2');
    await waitFor('the command', async () => of(Topics.updateCommand).length === 1);
    const deadlines = new RequestDeadlines(running.infra, registry, () => undefined);
    expect(await deadlines.expire(Date.now() + 61 * 60_000)).toEqual({ patches: 0, rollouts: 1 });
    const r = await registry.getRollout(rolloutId);
    expect(r.status).toBe('failed');
    expect(r.targets).toEqual([
      expect.objectContaining({
        pid: 10,
        state: 'failed',
        reason: expect.stringMatching(/no result from host h1 within 60 minutes.*dsu rollout retry/),
      }),
    ]);
    // A result that still comes is recorded; the rollout stays failed.
    await publish(Topics.updateResult, {
      rolloutId,
      host: 'h1',
      pid: 10,
      program: 'p',
      patchId: 'P12',
      outcome: 'applied',
      pauseUs: 1,
      updatePoint: 'poll',
      reasons: [],
      buildId: 'b2',
    });
    await waitFor('the late result', async () => (await registry.listResults(rolloutId)).length === 1);
    expect((await registry.getRollout(rolloutId)).status).toBe('failed');
  });
});
