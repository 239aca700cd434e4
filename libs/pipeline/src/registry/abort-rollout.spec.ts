import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_TOPICS, type CloudEvent, createEvent, currentType, InProcessBus, Topics } from '@dsu/events';
import { listAudit } from '@dsu/access';
import { startServices, type RunningServices } from '../pipeline';
import { openInfra } from '../shared/infra';
import { packDir } from '../shared/tarball';
import type { Registry } from './registry';

const sha = (c: string) => c.repeat(64);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A rollout stuck on an on-demand patch nobody answers (the user's report): abort ends it, and a
// retry starts over with a new patch request instead of waiting on the abandoned one.
describe('Registry: abort and retry of a rollout', () => {
  let home: string;
  let running: RunningServices;
  let registry: Registry;
  let bus: InProcessBus;
  const events: { topic: string; event: CloudEvent }[] = [];
  const of = (topic: string) => events.filter((e) => e.topic === topic).map((e) => e.event);
  const publish = (topic: string, data: unknown, key = 'p') =>
    bus.publish(topic, createEvent({ type: currentType(topic), source: 'test', data }), key);
  const ops = { kind: 'token' as const, id: 'tok_ops', name: 'ops', scopes: ['rollout'] };

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'dsu-abort-'));
    const infra = await openInfra('test', {
      DSU_HOME: home,
      DSU_HOST_ID: 'gw',
      DSU_RUN_DIR: join(home, 'run'),
    });
    bus = infra.bus as InProcessBus;
    running = await startServices(infra, ['gateway'], () => undefined);
    registry = running.registry as Registry;
    await bus.subscribe({
      group: 'probe',
      topics: ALL_TOPICS.filter((t) => t !== Topics.deadLetter),
      handler: async (event, topic) => void events.push({ topic, event }),
    });
    const src = join(home, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'main.c'), 'int main(void) { return 0; }\n');
    await registry.registerProgram('p');
    for (const [v, b] of [
      ['v1', 'b1'],
      ['v2', 'b2'],
    ]) {
      await registry.submitVersion({ program: 'p', version: v, source: await packDir(src) });
      await publish(Topics.buildCompleted, {
        program: 'p',
        version: v,
        buildId: b,
        executable: 'p',
        executableSha256: sha('a'),
        modelSha256: sha('b'),
        buildDirSha256: sha(b === 'b1' ? 'c' : 'd'),
        durationMs: 5,
      });
    }
    await waitFor('the v1->v2 request', async () => of(Topics.patchRequested).length === 1);
    const proc = { pid: 10, program: 'p', buildId: 'b1', baseBuildId: 'b1', patches: [] };
    await publish(Topics.agentHeartbeat, { host: 'h1', runDir: '/r', processes: [proc] }, 'h1');
    await waitFor('the inventory', async () => (await registry.listInventory()).length === 1);
  });
  afterAll(async () => {
    await running.stop();
    rmSync(home, { recursive: true, force: true });
  });

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
    const refs = { from: { version: 'v1', buildId: 'b1' }, to: { version: 'v2', buildId: 'b2' } };
    await publish(Topics.patchGenerated, {
      program: 'p',
      requestId,
      patchId: 'P12',
      bundleSha256: sha('9'),
      ...refs,
      functions: [],
    });
    await publish(Topics.patchVerdict, {
      program: 'p',
      patchId: 'P12',
      bundleSha256: sha('9'),
      ...refs,
      verdict: 'approved',
      findings: [],
      signature: 'c2ln',
      keyId: 'k1',
    });
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
