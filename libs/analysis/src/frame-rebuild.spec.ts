import type { FunctionModel, ProgramModel } from '@dsu/c-frontend';
import type { ManifestFrameMap, PatchManifest } from '@dsu/patch-format';
import { fn, model } from '../test/models';
import { checkSafety } from './check-safety';
import { firstReasons, frameMapLines } from './frame-rebuild';

// Stack-frame mapping in the safety rules: a replaced function active at a point is allowed when
// the runtime can rebuild the thread's frames (capture code all the way down, no no-resume call,
// a frame map per replaced function), and the denial says what is missing otherwise.

interface Frames {
  functions: { key: string; locals?: { name: string; escapesAt?: number }[] }[];
  refused?: { key: string; reason: string }[];
  noResume?: { key: string; line: number; reason: string }[];
}

/** A model with dsu-cc's frame facts for its one unit, as `dsu build` records them. */
const framed = (frames: Frames, ...fns: FunctionModel[]): ProgramModel =>
  ({
    ...model(...fns),
    instrumentation: {
      units: [
        {
          path: 'a.c',
          plan: {
            functions: [],
            updatePoints: [],
            frames: {
              functions: frames.functions.map((f) => ({ entry: '', sites: [], locals: [], ...f })),
              refused: frames.refused ?? [],
              noResume: frames.noResume ?? [],
            },
          },
        },
      ],
    },
  }) as ProgramModel;

const capture = (...keys: string[]) => keys.map((key) => ({ key }));

const mainMap: ManifestFrameMap = {
  key: 'main',
  sites: [
    { from: 'point:top', to: 'point:top', how: 'same' },
    { from: 'call:serve#0', to: 'call:serve#0', how: 'same' },
  ],
  locals: [
    { local: 'n', from: 'old-local', oldLocal: 'n' },
    { local: 'limit', from: 'initializer', expression: '64' },
  ],
};

const manifestWith = (m: Partial<PatchManifest>): PatchManifest => ({
  format: 1,
  patchId: 'x',
  program: 'p',
  from: { buildId: 'b', version: '1' },
  to: { buildId: 'c', version: '2' },
  soSha256: '0'.repeat(64),
  functions: [{ key: 'main', change: 'body', reasons: ['body changed'] }],
  types: [],
  globals: [],
  allowedUpdatePoints: [],
  ...m,
});

const check = (from: ProgramModel, manifest: PatchManifest) =>
  checkSafety({ from, to: from, manifest }, ['activeness', 'con-freeness']);

describe('activeness with stack-frame mapping', () => {
  // main's event loop: the points 'top' and 'late' are in main itself, which the patch replaces
  const loop = framed({ functions: capture('main', 'serve') }, fn('main', ['serve']), fn('serve'));

  it('denies a point in a replaced main without a frame map, saying so', () => {
    const v = check(loop, manifestWith({}));
    expect(v.updatePoints.allowed).toEqual([]);
    expect(v.updatePoints.denied).toContainEqual({ name: 'top', rules: ['activeness'] });
    const f = v.findings.find((x) => x.rule === 'activeness' && x.updatePoints?.includes('top'));
    expect(f?.severity).toBe('warning');
    expect(f?.message).toMatch(
      /its old code would resume after the update, and its frame cannot be rebuilt in the new code: the patch has no frame map for main\(\)/,
    );
  });

  it("quotes dsu patch's note on why it made no map", () => {
    const note =
      "frames: 'main' cannot be rebuilt in the new code (the local 'x' is declared register); the update waits until it is not active";
    const v = check(loop, manifestWith({ notes: [note] }));
    expect(v.findings.find((x) => x.updatePoints?.includes('top'))?.message).toContain(
      `the patch has no frame map for main() (${note})`,
    );
  });

  it('allows it with a frame map and says how the frame is rebuilt', () => {
    const v = check(loop, manifestWith({ frames: [mainMap] }));
    expect(v.updatePoints).toEqual({ allowed: ['late', 'top'], denied: [] });
    const info = v.findings.filter((x) => x.rule === 'activeness');
    expect(info.map((x) => x.severity)).toEqual(['info', 'info']);
    expect(info[0].updatePoints).toBeUndefined();
    expect(info[0].message).toBe(
      "at 'top' (a.c:1) main() may be on the stack (main() (a.c:1)) and the patch replaces it (body changed); " +
        'its frame will be rebuilt in the new code (main: n ← n, limit ← 64; resume: 2 sites unchanged)',
    );
    expect(v.verdict).toBe('approved');
  });

  it('keeps denying when the running build has no capture code at all', () => {
    const v = check(model(fn('main', ['serve']), fn('serve')), manifestWith({ frames: [mainMap] }));
    expect(v.updatePoints.allowed).toEqual([]);
    expect(v.findings[0].message).toMatch(
      /the running build has no capture code \(built before frame mapping/,
    );
  });

  it('denies a point under a function without capture code, naming it and why dsu-cc refused it', () => {
    const m = framed(
      {
        functions: capture('main'),
        refused: [{ key: 'serve', reason: "the local 'fd' is declared register" }],
      },
      fn('main', ['serve']),
      fn('serve', [], { flow: [{ kind: 'point', name: 'w', at: 1, line: 7 }] }),
    );
    const v = check(m, manifestWith({ frames: [mainMap] }));
    // in main itself the chain is main alone: rebuilt; below serve() it cannot be
    expect(v.updatePoints).toEqual({
      allowed: ['late', 'top'],
      denied: [{ name: 'w', rules: ['activeness'] }],
    });
    const f = v.findings.find((x) => x.updatePoints?.includes('w'));
    expect(f?.message).toMatch(
      /\(serve\(\) \(a\.c:7\) <- main\(\) \(a\.c:2\)\).*its frame cannot be rebuilt in the new code: serve\(\) has no capture code \(dsu-cc refused it: the local 'fd' is declared register\)$/,
    );
  });

  it('denies a point reached through a no-resume call, naming the line', () => {
    const m = framed(
      {
        functions: capture('main', 'serve'),
        noResume: [{ key: 'main', line: 2, reason: 'the call is nested in a condition' }],
      },
      fn('main', ['serve']),
      fn('serve', [], { flow: [{ kind: 'point', name: 'w', at: 1, line: 7 }] }),
    );
    const v = check(m, manifestWith({ frames: [mainMap] }));
    expect(v.updatePoints.denied).toEqual([{ name: 'w', rules: ['activeness'] }]);
    expect(v.findings.find((x) => x.updatePoints?.includes('w'))?.message).toMatch(
      /the call at a\.c:2 in main\(\) is a no-resume region \(the call is nested in a condition\): a thread stopped inside it cannot be unwound$/,
    );
  });

  it('denies a wait that is itself a no-resume region, but not a point on its line', () => {
    const m = framed(
      {
        functions: capture('main', 'serve'),
        noResume: [{ key: 'serve', line: 7, reason: 'the call is nested in a condition' }],
      },
      fn('main', ['serve']),
      fn('serve', [], {
        flow: [
          { kind: 'block', name: 'poll', at: 1, line: 7 },
          { kind: 'point', name: 'w', at: 2, line: 7 },
        ],
      }),
    );
    const v = check(m, manifestWith({ frames: [mainMap] }));
    expect(v.updatePoints.denied).toEqual([{ name: 'poll', rules: ['activeness'] }]);
    expect(v.findings.find((x) => x.updatePoints?.includes('poll'))?.message).toMatch(
      /the call at a\.c:7 in serve\(\) is a no-resume region/,
    );
  });

  it('denies when another replaced function on the chain has no map, and when a local escapes', () => {
    const m = framed(
      { functions: [{ key: 'main' }, { key: 'serve', locals: [{ name: 'buf', escapesAt: 9 }] }] },
      fn('main', ['serve']),
      fn('serve', [], { flow: [{ kind: 'point', name: 'w', at: 1, line: 7 }] }),
    );
    const functions = [
      { key: 'main', change: 'body' as const },
      { key: 'serve', change: 'body' as const },
    ];
    const v = check(m, manifestWith({ functions, frames: [mainMap] }));
    // ('late' follows main's call of serve, which the patch replaces: denied for that too)
    expect(v.updatePoints.denied).toContainEqual({ name: 'w', rules: ['activeness'] });
    const whyMain = v.findings.find((x) => x.updatePoints?.includes('w') && x.location?.startsWith('main'));
    expect(whyMain?.message).toContain(
      "serve() keeps the address of its local 'buf' beyond the call it is passed to (a.c:9) and a rebuilt frame would move it; make 'buf' static (or global); the patch has no frame map for serve()",
    );
  });
});

describe('version consistency of rebuilt frames', () => {
  const loop = framed({ functions: capture('main', 'serve') }, fn('main', ['serve']), fn('serve'));
  const mainOnly = manifestWith({ frames: [mainMap] });

  it('allows a point whose code before it is the same in both versions', () => {
    const v = check(loop, mainOnly);
    expect(v.updatePoints.allowed).toContain('top');
  });

  it('denies a point after a call of a function the patch replaces (it ran in the old code)', () => {
    const both = manifestWith({
      functions: [
        { key: 'main', change: 'body' },
        { key: 'serve', change: 'body' },
      ],
      frames: [mainMap, { key: 'serve', sites: [], locals: [] }],
    });
    const v = check(loop, both);
    expect(v.updatePoints.denied).toContainEqual({ name: 'late', rules: ['activeness'] });
    const why = v.findings.find((x) => x.updatePoints?.includes('late'))?.message;
    expect(why).toMatch(/main\(\) has called serve\(\), which the patch replaces, in the old code/);
  });

  it('denies a point whose code before it changed (a request half done in the old code)', () => {
    const old = framed({ functions: capture('main', 'log', 'serve') }, fn('main', ['log', 'serve']), fn('log'), fn('serve'));
    const next = framed({ functions: capture('main', 'serve') }, fn('main', ['serve']), fn('serve'));
    const v = checkSafety({ from: old, to: next, manifest: mainOnly }, ['activeness']);
    expect(v.updatePoints.denied).toContainEqual({ name: 'late', rules: ['activeness'] });
    expect(v.findings.find((x) => x.updatePoints?.includes('late'))?.message).toMatch(
      /what main\(\) does before point late changed \(old: point top, call log, call serve; new: point top, call serve\)/,
    );
    expect(v.updatePoints.allowed).toContain('top');
  });
});

describe('con-freeness with stack-frame mapping', () => {
  const typeUse = (at: number, line: number) => ({ kind: 'type' as const, name: 'struct s', at, line });
  const t = {
    name: 'struct s',
    oldLayoutHash: 'a',
    newLayoutHash: 'b',
    oldSize: 8,
    newSize: 16,
    capacity: 32,
    mode: 'eager' as const,
    transformer: '',
    fields: [],
    instances: { heap: '', globals: [], embeddedIn: [] },
  };
  // main uses struct s after its points; helper (unchanged) after its own point 'h'
  const main = fn('main', ['helper']);
  const m = framed(
    { functions: capture('main', 'helper') },
    { ...main, flow: [...(main.flow ?? []), typeUse(60, 11)] },
    fn('helper', [], { flow: [{ kind: 'point', name: 'h', at: 1, line: 20 }, typeUse(2, 21)] }),
  );
  const manifest = (frames?: ManifestFrameMap[]) =>
    manifestWith({
      functions: [{ key: 'main', change: 'body', reasons: ["uses 'struct s' concretely"] }],
      types: [t],
      ...(frames ? { frames } : {}),
    });

  it("lifts the old code's uses in a rebuilt frame of a replaced function", () => {
    expect(check(m, manifest()).updatePoints.allowed).toEqual([]);
    const v = check(m, manifest([mainMap]));
    expect(v.updatePoints.allowed).toEqual(['late', 'top']);
    const lifted = v.findings.find((x) => x.rule === 'con-freeness' && x.message.startsWith("at 'top'"));
    expect(lifted).toMatchObject({ severity: 'info', location: 'main (a.c:11)' });
    expect(lifted?.message).toMatch(
      /would use struct s concretely \(a\.c:11\).*its frame will be rebuilt in the new code$/,
    );
  });

  it('keeps the uses of an unchanged function whose frame is rebuilt in the same old code', () => {
    const v = check(m, manifest([mainMap]));
    expect(v.updatePoints.denied).toEqual([{ name: 'h', rules: ['con-freeness'] }]);
    const kept = v.findings.find((x) => x.updatePoints?.includes('h'));
    expect(kept?.message).toMatch(
      /the old code of helper\(\) continues and uses struct s concretely \(a\.c:21\)/,
    );
    // main's frame under it is rebuilt in the new code: not a reason to deny 'h'
    expect(v.findings.filter((x) => x.updatePoints?.includes('h'))).toHaveLength(1);
  });

  it('says why the frame cannot be rebuilt when it keeps a use', () => {
    const f = check(m, manifest()).findings.find(
      (x) => x.rule === 'con-freeness' && x.location === 'main (a.c:11)',
    );
    expect(f?.message).toMatch(
      /continues and uses struct s concretely .*; its frame cannot be rebuilt in the new code: the patch has no frame map for main\(\)/,
    );
  });
});

describe('frameMapLines', () => {
  it('describes each frame map of a manifest', () => {
    expect(frameMapLines(manifestWith({ frames: [mainMap] }))).toEqual([
      'main: n ← n, limit ← 64; resume: 2 sites unchanged',
    ]);
    expect(frameMapLines(manifestWith({}))).toEqual([]);
  });

  it('lists at most five reasons per finding and counts the rest (dnsmasq: hundreds per stack, a 1 GB verdict)', () => {
    const reasons = Array.from({ length: 300 }, (_, i) => `local 'x${i}' escapes`);
    const why = firstReasons(reasons);
    expect(why).toBe(`${reasons.slice(0, 5).join('; ')}; and 295 more conditions on stacks through it`);
    expect(firstReasons(reasons.slice(0, 2))).toBe(`local 'x0' escapes; local 'x1' escapes`);
  });
});
