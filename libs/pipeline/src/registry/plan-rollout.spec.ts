import { groupCommands, patchState, type PlanPatch, planRollout } from './plan-rollout';

const patch = (
  requestId: string,
  from: string,
  to: string,
  status: PlanPatch['status'],
  verdict: PlanPatch['verdict'] = null,
  extra: Partial<PlanPatch> = {},
): PlanPatch => ({
  requestId,
  fromBuildId: from,
  toBuildId: to,
  status,
  patchId: status === 'requested' ? null : `P-${from}-${to}-${requestId}`,
  error: status === 'failed' ? 'patch-gen: unsupported change\nmore detail' : null,
  verdict,
  requestedAt: `2026-01-01T00:00:0${requestId.replace(/\D/g, '') || 0}Z`,
  ...extra,
});
const proc = (pid: number, buildId: string, program = 'p') => ({ pid, program, buildId });
const built = new Map([
  ['b1', 'v1'],
  ['b2', 'v2'],
  ['b3', 'v3'],
]);

describe('patchState: where the patch between two builds stands', () => {
  it('prefers an approved patch, then one on its way, then reports the latest failure', () => {
    expect(patchState([], 'b1', 'b3')).toEqual({ kind: 'missing' });
    const failed = patch('r1', 'b1', 'b3', 'failed');
    const rejected = patch('r2', 'b1', 'b3', 'generated', 'rejected');
    expect(patchState([failed], 'b1', 'b3')).toMatchObject({
      kind: 'failed',
      reason: 'the patch from its build failed: patch-gen: unsupported change',
    });
    expect(patchState([failed, rejected], 'b1', 'b3')).toMatchObject({
      kind: 'failed',
      patch: { requestId: 'r2' },
      reason: expect.stringMatching(/rejected by the checker/),
    });
    const checking = patch('r3', 'b1', 'b3', 'generated');
    expect(patchState([failed, checking], 'b1', 'b3')).toMatchObject({
      kind: 'pending',
      patch: { requestId: 'r3' },
    });
    expect(patchState([patch('r4', 'b1', 'b3', 'requested')], 'b1', 'b3').kind).toBe('pending');
    const ok = patch('r5', 'b1', 'b3', 'generated', 'approved');
    expect(patchState([failed, checking, ok], 'b1', 'b3')).toMatchObject({
      kind: 'approved',
      patch: { requestId: 'r5' },
    });
    // Only the exact pair counts.
    expect(patchState([ok], 'b2', 'b3').kind).toBe('missing');
    expect(patchState([ok], 'b1', 'b2').kind).toBe('missing');
  });
});

describe('planRollout', () => {
  it('commands processes with an approved patch, requests one patch per build that has none, and skips processes on the target', () => {
    const v2v3 = patch('r1', 'b2', 'b3', 'generated', 'approved');
    const plan = planRollout({
      program: 'p',
      targetVersion: 'v3',
      targetBuildId: 'b3',
      hosts: [
        { host: 'h2', processes: [proc(21, 'b1'), proc(20, 'b2'), proc(22, 'b3')] },
        { host: 'h1', processes: [proc(11, 'b1'), proc(10, 'b2'), proc(12, 'b1', 'other'), proc(13, 'b1')] },
      ],
      patches: [v2v3],
      builtVersions: built,
    });
    expect(plan.targets.map((t) => `${t.host}:${t.pid}:${t.fromBuildId}:${t.action}`)).toEqual([
      'h1:10:b2:command',
      'h1:11:b1:wait',
      'h1:13:b1:wait',
      'h2:20:b2:command',
      'h2:21:b1:wait',
    ]);
    // One request for build b1, however many processes and hosts run it.
    expect(plan.requests).toEqual([{ fromBuildId: 'b1', fromVersion: 'v1' }]);
    expect(plan.commands).toEqual([
      { host: 'h1', patch: v2v3, pids: [10] },
      { host: 'h2', patch: v2v3, pids: [20] },
    ]);
  });

  it('waits on a patch already on its way instead of requesting it again', () => {
    const onItsWay = patch('r1', 'b1', 'b3', 'generated');
    const plan = planRollout({
      program: 'p',
      targetVersion: 'v3',
      targetBuildId: 'b3',
      hosts: [{ host: 'h', processes: [proc(1, 'b1'), proc(2, 'b1')] }],
      patches: [onItsWay],
      builtVersions: built,
    });
    expect(plan.requests).toEqual([]);
    expect(plan.commands).toEqual([]);
    expect(plan.targets.map((t) => [t.pid, t.action, t.patch?.requestId])).toEqual([
      [1, 'wait', 'r1'],
      [2, 'wait', 'r1'],
    ]);
  });

  it('fails the processes whose patch failed or whose build the registry does not know, and still updates the others', () => {
    const plan = planRollout({
      program: 'p',
      targetVersion: 'v3',
      targetBuildId: 'b3',
      hosts: [{ host: 'h', processes: [proc(1, 'b1'), proc(2, 'bX'), proc(3, 'b2')] }],
      patches: [patch('r1', 'b1', 'b3', 'failed'), patch('r2', 'b2', 'b3', 'generated', 'approved')],
      builtVersions: built,
    });
    expect(plan.targets.map((t) => [t.pid, t.action, t.reason])).toEqual([
      [1, 'failed', expect.stringMatching(/failed: patch-gen: unsupported change$/)],
      [2, 'failed', expect.stringMatching(/not a built version of 'p'/)],
      [3, 'command', null],
    ]);
    expect(plan.requests).toEqual([]);
    expect(plan.commands.map((c) => c.pids)).toEqual([[3]]);
  });

  it('targets nobody when every process runs the target build', () => {
    const plan = planRollout({
      program: 'p',
      targetVersion: 'v3',
      targetBuildId: 'b3',
      hosts: [{ host: 'h', processes: [proc(1, 'b3'), proc(2, 'b1', 'other')] }],
      patches: [],
      builtVersions: built,
    });
    expect(plan).toEqual({ targets: [], requests: [], commands: [] });
  });
});

describe('groupCommands', () => {
  it('groups by host and patch, never a target twice', () => {
    const a = patch('r1', 'b1', 'b3', 'generated', 'approved');
    const b = patch('r2', 'b2', 'b3', 'generated', 'approved');
    expect(
      groupCommands([
        { host: 'h', pid: 1, action: 'command', patch: a },
        { host: 'h', pid: 2, action: 'command', patch: b },
        { host: 'h', pid: 3, action: 'command', patch: a },
        { host: 'h', pid: 4, action: 'wait', patch: a },
        { host: 'g', pid: 5, action: 'command', patch: a },
      ]),
    ).toEqual([
      { host: 'h', patch: a, pids: [1, 3] },
      { host: 'h', patch: b, pids: [2] },
      { host: 'g', patch: a, pids: [5] },
    ]);
  });
});
