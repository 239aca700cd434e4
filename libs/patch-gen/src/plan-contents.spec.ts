import type { FunctionModel, GlobalModel, TypeModel } from '@dsu/c-frontend';
import { planContents, type BuildModel } from './plan-contents';

// Small hand-made program models: no compiler, no build directory.
const fn = (key: string, extra: Partial<FunctionModel> = {}): FunctionModel => ({
  key,
  name: key.replace(/^.*::/, ''),
  unit: 'main.c',
  isStatic: key.includes('::'),
  signature: 'int (int)',
  bodyHash: `body of ${key}`,
  calls: [],
  indirectCalls: [],
  addressTaken: false,
  variadic: false,
  typesUsed: [],
  globalsRead: [],
  globalsWritten: [],
  updatePoints: [],
  transactions: [],
  ...extra,
});
const global = (key: string, type: string, extra: Partial<GlobalModel> = {}): GlobalModel => ({
  key,
  name: key,
  unit: 'main.c',
  type,
  linkage: 'external',
  ...extra,
});
const point = (fields: [string, string, number][], size: number): TypeModel => ({
  key: 'struct point',
  kind: 'struct',
  fields: fields.map(([name, type, offset]) => ({ name, type, offsetBits: offset * 8, sizeBits: 32 })),
  size,
  align: 4,
  layoutHash: JSON.stringify(fields),
  capacity: 40,
  updatable: true,
  unit: 'main.c',
});
const pointT: TypeModel = {
  key: 'point_t',
  kind: 'typedef',
  fields: [],
  size: 0,
  align: 0,
  layoutHash: '',
  capacity: 0,
  updatable: false,
  target: 'struct point',
};

/** A model of the functions, globals and types given; `inlinable` as [caller, callee] (the running build's direct calls). */
const model = (
  buildId: string,
  functions: FunctionModel[],
  opts: { globals?: GlobalModel[]; types?: TypeModel[]; inlinable?: [string, string][] } = {},
): BuildModel => ({
  format: 1,
  program: 'p',
  buildId,
  units: [{ path: 'main.c', id: 'u1', flags: [] }],
  functions: Object.fromEntries(functions.map((f) => [f.key, f])),
  globals: Object.fromEntries((opts.globals ?? []).map((g) => [g.key, g])),
  types: Object.fromEntries((opts.types ?? []).map((t) => [t.key, t])),
  instrumentation: {
    units: [
      {
        path: 'main.c',
        object: 'main.o',
        preprocessed: 'main.i',
        plan: { functions: [], updatePoints: [], inlinable: opts.inlinable ?? [] },
      },
    ],
  },
});

const reasons = (c: ReturnType<typeof planContents>) => Object.fromEntries(c.reasons);

describe('planContents', () => {
  const v1 = model('b1', [
    fn('compute', { calls: ['main.c::helper'] }),
    fn('main.c::helper'),
    fn('main', { calls: ['compute'] }),
  ]);

  it('carries a changed body, and nothing else when no caller inlined it', () => {
    const v2 = model('b2', [
      fn('compute', { calls: ['main.c::helper'] }),
      fn('main.c::helper', { bodyHash: 'new' }),
      fn('main', { calls: ['compute'] }),
    ]);
    const c = planContents(v1, v2);
    expect(reasons(c)).toEqual({ 'main.c::helper': ['body changed'] });
    expect([...c.changed]).toEqual(['main.c::helper']);
    expect([...c.added]).toEqual([]);
    expect([...c.signature]).toEqual([]);
    expect(c.diff).toEqual({ body: ['main.c::helper'], signature: [], added: [], removed: [] });
    expect(c.refusals).toEqual([]);
    expect(c.empty).toBe(false);
  });

  it('carries an added function (added, not changed) with the caller that now calls it', () => {
    const v2 = model(
      'b2',
      [
        ...Object.values(v1.functions).filter((f) => f.key !== 'main'),
        fn('main', { calls: ['compute', 'log_it'], bodyHash: 'new' }),
        fn('log_it'),
      ],
      {
        globals: [global('hits', 'int')],
      },
    );
    const c = planContents(v1, v2);
    expect(reasons(c)).toEqual({ main: ['body changed'], log_it: ['added'] });
    expect([...c.added]).toEqual(['log_it']);
    expect([...c.changed]).toEqual(['main']);
    expect(c.globals).toEqual([
      { key: 'hits', change: 'added', note: 'defined by the patch with its new initializer' },
    ]);
    expect(c.refusals).toEqual([]);
  });

  it('ripples a signature change to every existing caller, and through inlining transitively', () => {
    const v1i = model('b1', [...Object.values(v1.functions), fn('twice', { calls: ['main'] }), fn('other')], {
      inlinable: [
        ['main', 'compute'],
        ['twice', 'main'],
        ['other', 'main.c::helper'],
      ],
    });
    const v2 = model('b2', [
      fn('compute', { calls: ['main.c::helper'], signature: 'long (long)' }),
      fn('main.c::helper'),
      fn('main', { calls: ['compute'] }),
      fn('twice', { calls: ['main'] }),
      fn('other'),
      fn('fresh', { calls: ['compute'] }),
    ]);
    const c = planContents(v1i, v2);
    expect(reasons(c)).toEqual({
      compute: ['signature changed (int (int) -> long (long))'],
      main: [
        "calls 'compute', whose signature changed",
        "may have inlined 'compute', which the patch replaces",
      ],
      twice: ["may have inlined 'main', which the patch replaces"],
      fresh: ['added'],
    });
    // `fresh` is new: it is added, not a caller to replace; `other` inlined only the unchanged helper
    expect([...c.signature]).toEqual(['compute']);
    expect([...c.changed].sort()).toEqual(['compute', 'main', 'twice']);
    expect(c.refusals).toEqual([]);
  });

  it('replaces the callers that may have inlined a removed function, and their inlining callers', () => {
    const v1i = model('b1', [...Object.values(v1.functions), fn('gone'), fn('twice', { calls: ['main'] })], {
      inlinable: [
        ['main', 'gone'],
        ['twice', 'main'],
      ],
    });
    const c = planContents(
      v1i,
      model('b2', [...Object.values(v1.functions), fn('twice', { calls: ['main'] })]),
    );
    expect(c.diff.removed).toEqual(['gone']);
    expect(reasons(c)).toEqual({
      main: ["may have inlined 'gone', which the patch replaces"],
      twice: ["may have inlined 'main', which the patch replaces"],
    });
    expect(c.empty).toBe(false);
  });

  it('ripples a layout change to the functions that use the type concretely, by any of its names', () => {
    const oldPoint = point(
      [
        ['x', 'int', 0],
        ['y', 'int', 4],
      ],
      8,
    );
    const newPoint = point(
      [
        ['x', 'int', 0],
        ['y', 'int', 4],
        ['z', 'int', 8],
      ],
      12,
    );
    const a = model(
      'b1',
      [fn('main', { typesUsed: ['point_t'] }), fn('draw', { typesUsed: ['struct point'] }), fn('idle')],
      {
        types: [oldPoint, pointT],
        globals: [global('origin', 'struct point')],
      },
    );
    const b = model(
      'b2',
      [fn('main', { typesUsed: [] }), fn('draw', { typesUsed: ['struct point'] }), fn('idle')],
      {
        types: [newPoint, pointT],
        globals: [global('origin', 'struct point')],
      },
    );
    const c = planContents(a, b, { transform: 'lazy' });
    expect(c.types.changed.map((t) => t.key)).toEqual(['struct point']);
    expect(reasons(c)).toEqual({
      // main no longer names the type, but its running code was compiled against the old layout
      main: ["uses 'struct point' concretely (its layout changed)"],
      draw: ["uses 'struct point' concretely (its layout changed)"],
    });
    expect([...c.lazy]).toEqual(['struct point']);
    expect(c.globals).toEqual([
      { key: 'origin', change: 'type', note: "instances of 'struct point' transformed" },
    ]);
    expect(c.empty).toBe(false);
  });

  it('refuses what it cannot carry, with every reason, and says when there is nothing to patch', () => {
    const a = model('b1', [fn('cb', { addressTaken: true }), fn('main')], {
      globals: [global('counter', 'long')],
    });
    // the new version no longer takes cb's address, but the running one has stored it
    const b = model('b2', [fn('cb', { signature: 'int (long)' }), fn('main')], {
      globals: [global('counter', 'int')],
    });
    const c = planContents(a, b);
    expect(c.refusals).toEqual([
      expect.stringMatching(/^global 'counter' changes type from 'long' to 'int'; /),
      "function 'cb' changes its signature and its address is taken: stored pointers would call it with the old signature",
    ]);
    // a rename in patch.yaml is the way out for the global; a bad mode is refused
    const renamed = model('b2', [fn('cb', { addressTaken: true }), fn('main')], {
      globals: [global('counter32', 'int')],
    });
    expect(planContents(a, renamed, { spec: { globalRenames: { counter32: 'counter' } } })).toMatchObject({
      refusals: [],
      globals: [expect.objectContaining({ key: 'counter32', change: 'renamed', from: 'counter' })],
    });
    expect(planContents(a, renamed, { spec: { globalRenames: { counter32: 'nosuch' } } }).refusals).toEqual([
      "patch.yaml renames global 'nosuch' to 'counter32', but the running version has no global 'nosuch'",
    ]);
    const same = planContents(a, a);
    expect(same).toMatchObject({ empty: true, refusals: [], globals: [] });
    expect(same.reasons.size).toBe(0);
  });
});
