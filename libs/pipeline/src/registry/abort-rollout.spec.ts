import { Topics } from '@dsu/events';
import { listAudit } from '@dsu/access';
import type { RunningServices } from '../pipeline';
import {
  approvePatch,
  type RegistryHarness,
  seedTwoVersionsAndAProcess,
  startRegistry,
  waitFor,
} from '../../test/registry-harness';
import type { Registry } from './registry';

// A rollout stuck on an on-demand patch nobody answers (the user's report): abort ends it, and a
// retry starts over with a new patch request instead of waiting on the abandoned one.
describe('Registry: abort and retry of a rollout', () => {
  let h: RegistryHarness;
  let running: RunningServices;
  let registry: Registry;
  const of = (topic: string) => h.of(topic);
  const publish = (topic: string, data: unknown, key = 'p') => h.publish(topic, data, key);
  const ops = { kind: 'token' as const, id: 'tok_ops', name: 'ops', scopes: ['rollout'] };

  beforeAll(async () => {
    h = await startRegistry('abort');
    ({ running, registry } = h);
    await seedTwoVersionsAndAProcess(h);
  });
  afterAll(() => h.stop());

  it('aborts a rollout waiting for a patch that never comes, and a retry starts over with a new request', async () => {
    const { rolloutId } = await registry.requestRollout('p', 'v2', ops);
    await waitFor('the rollout to wait', async () => {
      const r = await registry.getRollout(rolloutId);
      return r.targets[0]?.state === 'waiting';
    });
    const stuck = (of(Topics.patchRequested)[0].data as { requestId: string }).requestId;

    const aborted = await registry.abortRollout(rolloutId, 'the patcher is down', ops);
    expect(aborted).toEqual({
      rolloutId,
      status: 'aborted',
      abortedTargets: 1,
      abandonedPatches: [stuck],
    });
    const r = await registry.getRollout(rolloutId);
    expect(r).toMatchObject({ status: 'aborted', notes: ['aborted by ops (tok_ops): the patcher is down'] });
    expect(r.completedAt).not.toBeNull();
    expect(r.targets).toEqual([
      expect.objectContaining({
        pid: 10,
        state: 'aborted',
        reason: expect.stringMatching(/waiting for the patch/),
      }),
    ]);
    expect((await registry.listPatches('p')).map((p) => p.status)).toEqual(['abandoned']);
    await expect(registry.abortRollout(rolloutId, 'again', ops)).rejects.toMatchObject({
      status: 409,
      message: expect.stringMatching(/already aborted.*dsu rollout retry/),
    });
    await expect(registry.abortRollout('nope', 'x', ops)).rejects.toMatchObject({ status: 404 });

    const retry = await registry.retryRollout(rolloutId, ops);
    expect(retry).toEqual({ rolloutId: expect.any(String), retryOf: rolloutId });
    // The abandoned request is not waited on again: the retry asks for the patch anew.
    const fresh = await waitFor('a new v1->v2 request', async () => of(Topics.patchRequested)[1]);
    const requestId = (fresh.data as { requestId: string }).requestId;
    expect(requestId).not.toBe(stuck);
    await expect(registry.retryRollout(retry.rolloutId, ops)).rejects.toMatchObject({
      status: 409,
      message: expect.stringMatching(/abort it first/),
    });
    await approvePatch(h, requestId, 'P12');
    const cmd = await waitFor('the command', async () => of(Topics.updateCommand)[0]);
    expect(cmd.data).toMatchObject({ rolloutId: retry.rolloutId, pids: [10], patchId: 'P12' });
    await publish(Topics.updateResult, {
      rolloutId: retry.rolloutId,
      host: 'h1',
      pid: 10,
      program: 'p',
      patchId: 'P12',
      outcome: 'applied',
      pauseUs: 3,
      updatePoint: 'poll',
      reasons: [],
      buildId: 'b2',
    });
    await waitFor(
      'the retry to complete',
      async () => (await registry.getRollout(retry.rolloutId)).status === 'completed',
    );

    const audit = (await listAudit(running.infra.ds)).filter((a) => a.action.startsWith('rollout.'));
    expect(audit.map((a) => `${a.action}:${a.outcome}:${a.actor.id}`).sort()).toEqual([
      'rollout.abort:aborted:tok_ops',
      'rollout.request:accepted:tok_ops',
      'rollout.retry:accepted:tok_ops',
    ]);
    expect(audit.find((a) => a.action === 'rollout.retry')?.detail).toEqual({
      rolloutId: retry.rolloutId,
      retryOf: rolloutId,
    });
  });
});
