import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_TOPICS, type CloudEvent, createEvent, currentType, InProcessBus, Topics } from '@dsu/events';
import { startServices, type RunningServices } from '../pipeline';
import { openInfra } from '../shared/infra';
import { packDir } from '../shared/tarball';
import type { Registry } from './registry';
import { RequestDeadlines } from './request-deadlines';

const sha = (c: string) => c.repeat(64);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Requests whose answer never comes (a patcher that is gone, an applier that never reports) end
// `failed` with the reason once their deadline passed, instead of waiting forever.
describe('RequestDeadlines', () => {
  let home: string;
  let running: RunningServices;
  let registry: Registry;
  let bus: InProcessBus;
  const events: { topic: string; event: CloudEvent }[] = [];
  const of = (topic: string) => events.filter((e) => e.topic === topic).map((e) => e.event);
  const publish = (topic: string, data: unknown, key = 'p') =>
    bus.publish(topic, createEvent({ type: currentType(topic), source: 'test', data }), key);

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'dsu-deadlines-'));
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
