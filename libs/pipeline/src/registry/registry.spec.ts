import { type InProcessBus, Topics, createEvent } from '@dsu/events';
import { listAudit } from '@dsu/access';
import type { RunningServices } from '../pipeline';
import { type RegistryHarness, startRegistry, sha, waitFor } from '../../test/registry-harness';
import type { Registry } from './registry';

describe('Registry: the gateway projection, on SQLite and the in-process bus', () => {
  let h: RegistryHarness;
  let running: RunningServices;
  let registry: Registry;
  let bus: InProcessBus;
  const of = (topic: string) => h.of(topic);
  const publish = (topic: string, data: unknown, key = 'p') => h.publish(topic, data, key);
  const tarball = () => h.tarball();

  beforeAll(async () => {
    h = await startRegistry('registry', 'gw-host');
    ({ running, registry, bus } = h);
  });
  afterAll(() => h.stop());

  it('refuses bad submissions with the reason and what to do', async () => {
    await expect(
      registry.submitVersion({ program: 'p', version: 'v1', source: await tarball() }),
    ).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/POST \/programs/) });
    await registry.registerProgram('p', 'a test program');
    await expect(registry.registerProgram('bad name!')).rejects.toMatchObject({ status: 400 });
    await expect(
      registry.submitVersion({ program: 'p', version: 'v1', source: Buffer.from('plain text') }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/gzip/) });
    // The update point's syntax is checked before anything is stored or built.
    await expect(
      registry.submitVersion({
        program: 'p',
        version: 'v1',
        source: await tarball(),
        updatePoints: ['serve'],
      }),
    ).rejects.toMatchObject({ status: 400, code: 'invalid-update-point' });
    // An unknown program is said to be unknown (not an empty list, not a missing version).
    await expect(registry.listVersions('nosuch')).rejects.toMatchObject({
      status: 404,
      code: 'program-not-found',
      message: expect.stringMatching(/program 'nosuch' is not registered/),
    });
    await expect(registry.requestRollout('nosuch', 'v2')).rejects.toMatchObject({
      status: 404,
      code: 'program-not-found',
    });
    await expect(registry.getVersion('nosuch', 'v2')).rejects.toMatchObject({ code: 'program-not-found' });
    await expect(registry.getVersion('p', 'v9')).rejects.toMatchObject({ code: 'version-not-found' });
  });

  it('projects builds, requests the patch from the previous version, and records the verdict', async () => {
    const v1 = await registry.submitVersion({
      program: 'p',
      version: 'v1',
      source: await tarball(),
      updatePoints: ['serve:loop'],
    });
    expect(v1).toMatchObject({ status: 'building', patch: null });
    await expect(
      registry.submitVersion({ program: 'p', version: 'v1', source: await tarball() }),
    ).rejects.toMatchObject({ status: 409 });
    const req = await waitFor('build.requested', () => of(Topics.buildRequested)[0]);
    expect(req.data).toEqual({
      program: 'p',
      version: 'v1',
      sourceSha256: v1.sourceSha256,
      bin: null,
      updatePoints: ['serve:loop'],
      layoutFromModelSha256: null, // the first version starts the lineage
    });
    const built = (version: string, buildId: string, dir: string) => ({
      program: 'p',
      version,
      buildId,
      executable: 'p',
      executableSha256: sha('a'),
      modelSha256: sha('b'),
      buildDirSha256: sha(dir),
      durationMs: 5,
    });
    await publish(Topics.buildCompleted, built('v1', 'b1', 'c'));
    await waitFor('v1 built', async () => (await registry.getVersion('p', 'v1')).status === 'built');
    expect(of(Topics.patchRequested)).toHaveLength(0); // the first version has nothing to patch from

    await registry.submitVersion({ program: 'p', version: 'v2', source: await tarball() });
    // v2 keeps the struct capacities of the lineage: its build gets v1's model
    const req2 = await waitFor('build.requested v2', () => of(Topics.buildRequested)[1]);
    expect(req2.data).toMatchObject({ version: 'v2', layoutFromModelSha256: sha('b') });
    await publish(Topics.buildCompleted, built('v2', 'b2', 'd'));
    const pr = await waitFor('patch.requested', () => of(Topics.patchRequested)[0]);
    expect(pr.data).toMatchObject({
      program: 'p',
      from: { version: 'v1', buildId: 'b1', buildDirSha256: sha('c') },
      to: { version: 'v2', buildId: 'b2', buildDirSha256: sha('d') },
    });
    expect(pr.causationid).toBeDefined();
    const requestId = (pr.data as { requestId: string }).requestId;

    await publish(Topics.patchGenerated, {
      program: 'p',
      requestId,
      patchId: 'P12',
      bundleSha256: sha('e'),
      from: { version: 'v1', buildId: 'b1' },
      to: { version: 'v2', buildId: 'b2' },
      functions: [{ key: 'serve', change: 'body' }],
    });
    await publish(Topics.patchVerdict, {
      program: 'p',
      patchId: 'P12',
      bundleSha256: sha('e'),
      from: { version: 'v1', buildId: 'b1' },
      to: { version: 'v2', buildId: 'b2' },
      verdict: 'approved',
      findings: [],
      updatePoints: { allowed: ['top'], denied: [{ name: 'mid', rules: ['version-consistency'] }] },
      signature: 'c2ln',
      keyId: 'k1',
    });
    const v2 = await waitFor('the verdict', async () => {
      const v = await registry.getVersion('p', 'v2');
      return v.patch?.verdict ? v : undefined;
    });
    expect(v2.patch).toMatchObject({
      id: 'P12',
      status: 'generated',
      verdict: 'approved',
      updatePoints: { allowed: ['top'], denied: [{ name: 'mid', rules: ['version-consistency'] }] },
      fromVersion: 'v1',
    });
    // A second verdict (a checker that restarted mid-check) does not replace the first.
    await publish(Topics.patchVerdict, {
      program: 'p',
      patchId: 'P12',
      bundleSha256: sha('e'),
      from: { version: 'v1', buildId: 'b1' },
      to: { version: 'v2', buildId: 'b2' },
      verdict: 'rejected',
      findings: [],
      signature: null,
      keyId: null,
    });
    await waitFor('both verdicts consumed', () => of(Topics.patchVerdict).length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(await registry.listVerdicts('p')).toEqual([
      expect.objectContaining({ patchId: 'P12', verdict: 'approved' }),
    ]);
  });

  it('plans a rollout per host from the inventory, notes what it cannot update, and completes on the last result', async () => {
    const proc = (pid: number, buildId: string, program = 'p') => ({
      pid,
      program,
      buildId,
      baseBuildId: buildId,
      patches: [],
    });
    await publish(
      Topics.agentHeartbeat,
      { host: 'h1', runDir: '/r1', processes: [proc(10, 'b1'), proc(11, 'b2'), proc(12, 'b1', 'other')] },
      'h1',
    );
    await publish(
      Topics.agentHeartbeat,
      { host: 'h2', runDir: '/r2', processes: [proc(20, 'b1'), proc(21, 'bX')] },
      'h2',
    );
    await waitFor('two hosts', async () => (await registry.listInventory()).length === 2);
    expect((await registry.listInventory())[0].processes.map((p) => p.version)).toEqual(['v1', 'v2', null]);

    await expect(registry.requestRollout('p', 'v9')).rejects.toMatchObject({ status: 404 });
    const { rolloutId } = await registry.requestRollout('p', 'v2');
    const cmds = await waitFor('two update commands', () =>
      of(Topics.updateCommand).length === 2 ? of(Topics.updateCommand) : undefined,
    );
    expect(cmds.map((c) => c.data)).toEqual([
      expect.objectContaining({
        rolloutId,
        host: 'h1',
        pids: [10],
        patchId: 'P12',
        bundleSha256: sha('e'),
        fromBuildId: 'b1',
        toBuildId: 'b2',
        signature: 'c2ln',
        keyId: 'k1',
      }),
      expect.objectContaining({ rolloutId, host: 'h2', pids: [20] }),
    ]);
    let r = await registry.getRollout(rolloutId);
    expect(r).toMatchObject({
      status: 'running',
      patchId: 'P12',
      notes: [expect.stringMatching(/pid 21 on h2 runs build bX: its build is not a built version of 'p'/)],
    });

    const result = (host: string, pid: number) => ({
      rolloutId,
      host,
      pid,
      program: 'p',
      patchId: 'P12',
      outcome: 'applied',
      pauseUs: 12,
      updatePoint: 'poll',
      reasons: [],
      buildId: 'b2',
    });
    const first = createEvent({
      type: `${Topics.updateResult}.v1`, // one process's result, as appliers before batching sent
      source: 'test',
      data: result('h1', 10),
    });
    await bus.publish(Topics.updateResult, first, 'p');
    await bus.publish(Topics.updateResult, first, 'p'); // redelivered
    await waitFor('one result', async () => (await registry.listResults(rolloutId)).length === 1);
    expect((await registry.getRollout(rolloutId)).status).toBe('running');
    await publish(Topics.updateResult, result('h2', 20));
    r = await waitFor('the rollout to finish', async () => {
      const x = await registry.getRollout(rolloutId);
      return x.completedAt ? x : undefined;
    });
    // Every targeted process reported applied, but pid 21 could not be targeted.
    expect(r.status).toBe('failed');
    expect(r.results.map((x) => `${x.host}:${x.pid}:${x.outcome}`)).toEqual([
      'h1:10:applied',
      'h2:20:applied',
    ]);
  });

  it('requests the patch from each older build a rollout finds, once, and commands its processes when the verdict is in', async () => {
    const built = (version: string, buildId: string, dir: string) => ({
      program: 'p',
      version,
      buildId,
      executable: 'p',
      executableSha256: sha('a'),
      modelSha256: sha('b'),
      buildDirSha256: sha(dir),
      durationMs: 5,
    });
    const requests = (to: string) =>
      of(Topics.patchRequested)
        .map((e) => e.data as { requestId: string; from: { buildId: string }; to: { buildId: string } })
        .filter((d) => d.to.buildId === to);
    await registry.submitVersion({ program: 'p', version: 'v4', source: await tarball() });
    await publish(Topics.buildCompleted, built('v4', 'b4', 'f'));
    // The automatic request: from the latest earlier version that built (v2).
    const auto = await waitFor('the v2->v4 request', () => requests('b4')[0]);
    expect(auto.from.buildId).toBe('b2');
    const proc = (pid: number, buildId: string) => ({
      pid,
      program: 'p',
      buildId,
      baseBuildId: buildId,
      patches: [],
    });
    await publish(
      Topics.agentHeartbeat,
      { host: 'h3', runDir: '/r3', processes: [proc(30, 'b1'), proc(31, 'b2'), proc(32, 'b4')] },
      'h3',
    );
    await publish(Topics.agentHeartbeat, { host: 'h4', runDir: '/r4', processes: [proc(40, 'b1')] }, 'h4');
    await waitFor('the new hosts', async () => (await registry.listInventory()).some((h) => h.host === 'h4'));
    // Only this test's hosts: the earlier test's hosts run other builds of p.
    await publish(Topics.agentHeartbeat, { host: 'h1', runDir: '/r1', processes: [] }, 'h1');
    await publish(Topics.agentHeartbeat, { host: 'h2', runDir: '/r2', processes: [] }, 'h2');
    await waitFor('h1 and h2 emptied', async () =>
      (await registry.listInventory()).every(
        (h) => !['h1', 'h2'].includes(h.host) || h.processes.length === 0,
      ),
    );
    const commandsBefore = of(Topics.updateCommand).length;
    const { rolloutId } = await registry.requestRollout('p', 'v4');
    const onDemand = await waitFor('the on-demand v1->v4 request', () =>
      requests('b4').find((r) => r.from.buildId === 'b1'),
    );
    let r = await waitFor('the rollout to wait', async () => {
      const x = await registry.getRollout(rolloutId);
      return x.status === 'running' ? x : undefined;
    });
    expect(r.targets.map((t) => `${t.host}:${t.pid}:${t.state}:${t.fromBuildId}`)).toEqual([
      'h3:30:waiting:b1',
      'h3:31:waiting:b2',
      'h4:40:waiting:b1',
    ]);
    expect(requests('b4')).toHaveLength(2); // v2->v4 (automatic) and v1->v4 (on demand), not one per process
    expect(of(Topics.updateCommand)).toHaveLength(commandsBefore);
    // The version's own patch stays the one from the previous version.
    expect((await registry.getVersion('p', 'v4')).patch).toMatchObject({
      requestId: auto.requestId,
      fromVersion: 'v2',
    });
    // The same pair asked again (by the API) is the same request, not a second generation.
    expect(await registry.requestPatch('p', 'v1', 'v4')).toEqual({
      requestId: onDemand.requestId,
      created: false,
    });

    const generate = async (requestId: string, from: [string, string], verdict: 'approved' | 'rejected') => {
      const patchId = `P-${from[1]}-b4`;
      const refs = { from: { version: from[0], buildId: from[1] }, to: { version: 'v4', buildId: 'b4' } };
      await publish(Topics.patchGenerated, {
        program: 'p',
        requestId,
        patchId,
        bundleSha256: sha('9'),
        ...refs,
        functions: [],
      });
      await publish(Topics.patchVerdict, {
        program: 'p',
        patchId,
        bundleSha256: sha('9'),
        ...refs,
        verdict,
        findings: [],
        signature: verdict === 'approved' ? 'c2ln' : null,
        keyId: verdict === 'approved' ? 'k1' : null,
      });
      return patchId;
    };
    const p24 = await generate(auto.requestId, ['v2', 'b2'], 'approved');
    const cmd = await waitFor('the command for pid 31', () => of(Topics.updateCommand)[commandsBefore]);
    expect(cmd.data).toMatchObject({
      rolloutId,
      host: 'h3',
      pids: [31],
      patchId: p24,
      fromBuildId: 'b2',
      toBuildId: 'b4',
    });
    await publish(Topics.patchFailed, {
      program: 'p',
      requestId: onDemand.requestId,
      error: 'the change to struct conn is not supported',
      reasons: ['struct conn changed'],
    });
    await waitFor(
      'the v1 targets to fail',
      async () =>
        (await registry.getRollout(rolloutId)).targets.filter((t) => t.state === 'failed').length === 2,
    );
    r = await registry.getRollout(rolloutId);
    expect(r.status).toBe('running'); // pid 31 has not reported yet
    expect(r.notes).toEqual([
      expect.stringMatching(
        /^pid 30 on h3 runs build b1: the patch from its build failed: the change to struct conn/,
      ),
      expect.stringMatching(/^pid 40 on h4 runs build b1: the patch from its build failed/),
    ]);
    await publish(Topics.updateResult, {
      rolloutId,
      host: 'h3',
      pid: 31,
      program: 'p',
      patchId: p24,
      outcome: 'applied',
      pauseUs: 7,
      updatePoint: 'poll',
      reasons: [],
      buildId: 'b4',
    });
    r = await waitFor('the rollout to finish', async () => {
      const x = await registry.getRollout(rolloutId);
      return x.completedAt ? x : undefined;
    });
    expect(r.status).toBe('failed');
    expect(r.results.map((x) => `${x.pid}:${x.outcome}`)).toEqual(['31:applied']);
    expect(of(Topics.updateCommand)).toHaveLength(commandsBefore + 1);

    // A later rollout does not ask for the failed pair again; its processes fail at once with the reason.
    const again = await registry.requestRollout('p', 'v4');
    const r2 = await waitFor('the second rollout planned', async () => {
      const x = await registry.getRollout(again.rolloutId);
      return x.status !== 'requested' ? x : undefined;
    });
    expect(r2.targets.map((t) => `${t.pid}:${t.state}`)).toEqual(['30:failed', '31:commanded', '40:failed']);
    expect(requests('b4')).toHaveLength(2);
    await waitFor('its one command', () => of(Topics.updateCommand).length === commandsBefore + 2);
    expect(of(Topics.updateCommand)[commandsBefore + 1].data).toMatchObject({
      rolloutId: again.rolloutId,
      pids: [31],
    });
  });

  it('sends an event with an invalid payload to the dead-letter topic and goes on', async () => {
    await publish(Topics.buildFailed, { program: 'p' });
    await registry.submitVersion({ program: 'p', version: 'v3', source: await tarball() });
    await publish(Topics.buildFailed, {
      program: 'p',
      version: 'v3',
      error: 'main.c:1: error: expected ;',
      diagnostics: 'cc ...',
    });
    const v3 = await waitFor('v3 failed', async () => {
      const v = await registry.getVersion('p', 'v3');
      return v.status === 'failed' ? v : undefined;
    });
    expect(v3.error).toMatch(/expected ;/);
    // The label of a version the compiler failed to build is free again: the fixed source replaces it.
    const requestsBefore = of(Topics.buildRequested).length;
    const again = await registry.submitVersion({ program: 'p', version: 'v3', source: await tarball() });
    expect(again).toMatchObject({ status: 'building', error: null });
    expect(of(Topics.buildRequested)).toHaveLength(requestsBefore + 1);
    expect((await registry.listVersions('p')).filter((v) => v.version === 'v3')).toHaveLength(1);
    // ... or deleted, once failed; a version that is building or built cannot be.
    await expect(registry.deleteVersion('p', 'v3')).rejects.toMatchObject({
      status: 409,
      code: 'version-not-failed',
    });
    await expect(registry.deleteVersion('p', 'v9')).rejects.toMatchObject({
      status: 404,
      code: 'version-not-found',
    });
    await publish(Topics.buildFailed, { program: 'p', version: 'v3', error: 'again', diagnostics: '' });
    await waitFor('v3 failed again', async () => (await registry.getVersion('p', 'v3')).status === 'failed');
    expect(await registry.deleteVersion('p', 'v3')).toEqual({ program: 'p', version: 'v3', deleted: true });
    await expect(registry.getVersion('p', 'v3')).rejects.toMatchObject({ code: 'version-not-found' });
    // A built one keeps its label.
    await expect(
      registry.submitVersion({ program: 'p', version: 'v1', source: await tarball() }),
    ).rejects.toMatchObject({ status: 409, code: 'version-exists' });
    expect(bus.deadLetters()).toEqual([
      expect.objectContaining({
        topic: Topics.buildFailed,
        error: expect.stringMatching(/must have required property 'version'/),
      }),
    ]);
  });

  it('audits who registered, submitted and rolled out (in the same transaction), and the checker as the actor of each verdict', async () => {
    const ops = { kind: 'token' as const, id: 'tok_0123456789abcdef', name: 'ops-ci' };
    await registry.registerProgram('q', '', ops);
    await registry.registerProgram('q', '', ops); // already registered: nothing to audit
    await registry.submitVersion({ program: 'q', version: 'v1', source: await tarball(), by: ops });
    // A refused submission commits nothing, so it leaves no audit row either.
    await expect(
      registry.submitVersion({ program: 'q', version: 'v1', source: await tarball(), by: ops }),
    ).rejects.toMatchObject({ status: 409 });
    await expect(registry.requestRollout('q', 'v1', ops)).rejects.toMatchObject({ status: 409 });
    const { rolloutId } = await registry.requestRollout('p', 'v2', ops);
    const audit = await listAudit(running.infra.ds);
    const row = (action: string, program: string) =>
      audit.filter((a) => a.action === action && a.program === program);
    expect(row('program.register', 'q')).toEqual([
      expect.objectContaining({ actor: { kind: 'token', id: ops.id, name: 'ops-ci' }, outcome: 'created' }),
    ]);
    expect(row('version.submit', 'q')).toEqual([
      expect.objectContaining({
        target: 'v1',
        outcome: 'accepted',
        actor: expect.objectContaining({ name: 'ops-ci' }),
      }),
    ]);
    expect(row('rollout.request', 'q')).toEqual([]);
    expect(row('rollout.request', 'p')).toEqual([
      expect.objectContaining({ target: 'v2', outcome: 'accepted', detail: { rolloutId } }),
    ]);
    // P12 got two verdicts (approved, then a restarted checker's rejected): only the first counts.
    expect(audit.filter((a) => a.action === 'patch.verdict' && a.target === 'P12')).toEqual([
      expect.objectContaining({
        actor: { kind: 'service', id: 'checker', name: 'checker (key k1)' },
        program: 'p',
        outcome: 'approved',
        detail: expect.objectContaining({ fromVersion: 'v1', toVersion: 'v2', keyId: 'k1' }),
      }),
    ]);
  });
});
