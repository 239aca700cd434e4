import { describeFrameMap, frameMapEntries, mapFrame, whyNotRebuildable, type FrameFacts } from './index';

type Local = FrameFacts['locals'][number];

const fd: Local = { name: 'fd', type: 'int', kind: 'int' };
const served: Local = { name: 'served', type: 'unsigned int', kind: 'uint', initializer: 'simple' };
const buf: Local = { name: 'buf', type: 'char[512]', kind: 'bytes' };

/** A serve loop: waits in poll, handles a request, counts it. */
function serve(sites: string[], locals: Local[] = [fd, served, buf]): FrameFacts {
  return { key: 'serve', sites, locals };
}

const SITES = ['point:loop', 'wait:poll#0', 'wait:poll#0:again', 'call:handle#0'];

describe('mapFrame: identical facts', () => {
  const r = mapFrame(serve(SITES), serve(SITES));

  it('maps every site to itself and every local to its old self, without problems', () => {
    expect(r.problems).toEqual([]);
    expect(r.map.sites).toEqual(SITES.map((s) => ({ from: s, to: s, how: 'same' })));
    expect(r.map.locals).toEqual([
      { local: 'fd', from: 'old-local', oldLocal: 'fd' },
      { local: 'served', from: 'old-local', oldLocal: 'served' },
      { local: 'buf', from: 'old-local', oldLocal: 'buf' },
    ]);
  });

  it('needs no descriptor entries, and says so in one line', () => {
    expect(frameMapEntries(r.map)).toEqual([]);
    expect(describeFrameMap(r.map)).toBe(
      'serve: fd ← fd, served ← served, buf ← buf; resume: 3 sites unchanged',
    );
  });
});

describe('mapFrame: sites', () => {
  it('moves a call whose ordinal shifts when a call of the same callee is inserted before it', () => {
    const old = serve(['point:loop', 'wait:poll#0', 'wait:poll#0:again', 'call:log#0', 'call:handle#0']);
    const next = serve([
      'point:loop',
      'call:log#0',
      'wait:poll#0',
      'wait:poll#0:again',
      'call:log#1',
      'call:handle#0',
    ]);
    const r = mapFrame(old, next);
    expect(r.problems).toEqual([]);
    expect(r.map.sites).toContainEqual({ from: 'call:log#0', to: 'call:log#1', how: 'moved' });
    expect(r.map.sites).toContainEqual({ from: 'call:handle#0', to: 'call:handle#0', how: 'same' });
    expect(frameMapEntries(r.map)).toEqual([
      { kind: 'site', key: 'serve', from: 'call:log#0', to: 'call:log#1' },
    ]);
    expect(describeFrameMap(r.map)).toContain('3 sites unchanged, call:log#0 → call:log#1 (moved)');
  });

  it('keeps an ambiguous call in place rather than moving it without evidence', () => {
    const r = mapFrame(serve(['call:log#0']), serve(['call:log#0', 'call:log#1']));
    expect(r.map.sites).toEqual([{ from: 'call:log#0', to: 'call:log#0', how: 'same' }]);
  });

  it('reports a site the new version lacks with the patch.yaml to write and the new sites', () => {
    const r = mapFrame(serve(SITES), serve(['wait:poll#0', 'wait:poll#0:again', 'call:handle_request#0']));
    expect(r.problems).toEqual([
      `function 'serve': the running version can stop at 'point:loop', which the new version does not have; say where such a frame resumes, in patch.yaml:\n  frames:\n    serve:\n      resume: { "point:loop": "<a site of the new serve: wait:poll#0, call:handle_request#0>" }`,
      `function 'serve': the running version can stop at 'call:handle#0', which the new version does not have; say where such a frame resumes, in patch.yaml:\n  frames:\n    serve:\n      resume: { "call:handle#0": "<a site of the new serve: wait:poll#0, call:handle_request#0>" }`,
    ]);
  });

  it('quotes a static function key in the snippet', () => {
    const r = mapFrame(
      { ...serve(['point:a']), key: 'src/s.c::serve' },
      { ...serve(['point:b']), key: 'src/s.c::serve' },
    );
    expect(r.problems[0]).toContain('  frames:\n    "src/s.c::serve":\n      resume:');
  });

  it('lets a patch.yaml resume override place the missing site', () => {
    const next = serve(['point:loop', 'wait:poll#0', 'wait:poll#0:again', 'call:handle_request#0']);
    const r = mapFrame(serve(SITES), next, { resume: { 'call:handle#0': 'call:handle_request#0' } });
    expect(r.problems).toEqual([]);
    expect(r.map.sites).toContainEqual({
      from: 'call:handle#0',
      to: 'call:handle_request#0',
      how: 'override',
    });
    expect(r.map.sites.map((s) => s.from)).toEqual(SITES);
    expect(frameMapEntries(r.map)).toEqual([
      { kind: 'site', key: 'serve', from: 'call:handle#0', to: 'call:handle_request#0' },
    ]);
    expect(describeFrameMap(r.map)).toMatch(
      /resume: 2 sites unchanged, call:handle#0 → call:handle_request#0 \(patch\.yaml\)$/,
    );
  });

  it('lets an override win over the alignment', () => {
    const r = mapFrame(serve(SITES), serve(SITES), { resume: { 'call:handle#0': 'point:loop' } });
    expect(r.map.sites).toContainEqual({ from: 'call:handle#0', to: 'point:loop', how: 'override' });
  });

  it('moves a wait together with its :again', () => {
    // A poll inserted before the old call: the old poll, after the call, is now the second.
    const shifted = mapFrame(
      serve(['call:log#0', 'wait:poll#0', 'wait:poll#0:again']),
      serve(['wait:poll#0', 'wait:poll#0:again', 'call:log#0', 'wait:poll#1', 'wait:poll#1:again']),
    );
    expect(shifted.map.sites).toEqual([
      { from: 'call:log#0', to: 'call:log#0', how: 'same' },
      { from: 'wait:poll#0', to: 'wait:poll#1', how: 'moved' },
      { from: 'wait:poll#0:again', to: 'wait:poll#1:again', how: 'moved' },
    ]);
    expect(frameMapEntries(shifted.map).map((e) => `${e.from}>${e.to}`)).toEqual([
      'wait:poll#0>wait:poll#1',
      'wait:poll#0:again>wait:poll#1:again',
    ]);
    expect(describeFrameMap(shifted.map)).toMatch(
      /resume: 1 site unchanged, wait:poll#0 → wait:poll#1 \(moved\)$/,
    );
  });

  it("sends an overridden wait's :again to the new wait's :again, or to a point or call itself", () => {
    const old = serve(['wait:read#0', 'wait:read#0:again']);
    const toWait = mapFrame(old, serve(['wait:recv#0', 'wait:recv#0:again']), {
      resume: { 'wait:read#0': 'wait:recv#0' },
    });
    expect(toWait.problems).toEqual([]);
    expect(toWait.map.sites).toEqual([
      { from: 'wait:read#0', to: 'wait:recv#0', how: 'override' },
      { from: 'wait:read#0:again', to: 'wait:recv#0:again', how: 'override' },
    ]);
    const toCall = mapFrame(old, serve(['call:next_event#0']), {
      resume: { 'wait:read#0': 'call:next_event#0' },
    });
    expect(toCall.problems).toEqual([]);
    expect(toCall.map.sites.map((s) => s.to)).toEqual(['call:next_event#0', 'call:next_event#0']);
  });

  it('reports overrides that name unknown sites, listing the ones that exist', () => {
    const r = mapFrame(serve(SITES), serve(SITES), {
      resume: { 'call:nope#0': 'point:loop', 'call:handle#0': 'call:gone#0' },
    });
    expect(r.problems).toHaveLength(2);
    expect(r.problems[0]).toMatch(/'call:nope#0'.*point:loop, wait:poll#0, call:handle#0/);
    expect(r.problems[1]).toMatch(
      /'call:gone#0', which the new version does not have.*point:loop, wait:poll#0, call:handle#0/,
    );
  });
});

describe('mapFrame: locals', () => {
  it('takes a renamed local from patch.yaml and tells the runtime', () => {
    const next = serve(SITES, [fd, { ...served, name: 'handled' }, buf]);
    const r = mapFrame(serve(SITES), next, { locals: { handled: { from: 'served' } } });
    expect(r.problems).toEqual([]);
    expect(r.map.locals[1]).toEqual({ local: 'handled', from: 'renamed', oldLocal: 'served' });
    expect(frameMapEntries(r.map)).toEqual([{ kind: 'local', key: 'serve', from: 'served', to: 'handled' }]);
    expect(describeFrameMap(r.map)).toContain('handled ← served (renamed)');
  });

  it('reports a rename from a local the running version does not have', () => {
    const r = mapFrame(serve(SITES), serve(SITES), { locals: { served: { from: 'count' } } });
    expect(r.problems).toEqual([
      expect.stringMatching(
        /'count', which the running version does not have \(its locals: fd, served, buf\)/,
      ),
    ]);
  });

  it('reports an override for a local the new version does not have', () => {
    const r = mapFrame(serve(SITES), serve(SITES), { locals: { count: { init: '0' } } });
    expect(r.problems).toEqual([
      expect.stringMatching(/'count', which the new version does not have \(its locals: fd, served, buf\)/),
    ]);
  });

  it('replaces an old value by an init override, telling the runtime not to carry it', () => {
    const r = mapFrame(serve(SITES), serve(SITES), { locals: { served: { init: '0' } } });
    expect(r.problems).toEqual([]);
    expect(r.map.locals[1]).toMatchObject({ local: 'served', from: 'initializer', expression: '0' });
    expect(frameMapEntries(r.map)).toEqual([{ kind: 'local', key: 'serve', from: '', to: 'served' }]);
    expect(describeFrameMap(r.map)).toContain('served ← 0');
  });

  it('needs no entry for an init override of a local the old frame lacks', () => {
    const idle: Local = { name: 'idle', type: 'int', kind: 'int' };
    const r = mapFrame(serve(SITES), serve(SITES, [fd, served, buf, idle]), {
      locals: { idle: { init: '-1' } },
    });
    expect(r.map.locals[3]).toMatchObject({ local: 'idle', from: 'initializer', expression: '-1' });
    expect(frameMapEntries(r.map)).toEqual([]);
  });

  it('converts an integer local whose size changes, noting the check', () => {
    const r = mapFrame(serve(SITES), serve(SITES, [{ ...fd, type: 'long' }, served, buf]));
    expect(r.problems).toEqual([]);
    expect(r.map.locals[0]).toEqual({
      local: 'fd',
      from: 'conversion',
      oldLocal: 'fd',
      note: expect.stringMatching(/converted.*does not fit/),
    });
    expect(frameMapEntries(r.map)).toEqual([]);
    expect(describeFrameMap(r.map)).toContain('fd ← fd (converted)');
  });

  it('carries a pointer local whose pointee type changes', () => {
    const p: Local = { name: 'c', type: 'struct conn *', kind: 'ptr' };
    const r = mapFrame(serve(SITES, [p]), serve(SITES, [{ ...p, type: 'struct client *' }]), undefined, {
      changedTypes: new Set(['struct conn']),
    });
    expect(r.problems).toEqual([]);
    expect(r.map.locals[0]).toMatchObject({
      from: 'conversion',
      note: expect.stringMatching(/pointer carried/),
    });
  });

  it('reports a struct local whose type changes, with the patch.yaml to write', () => {
    const st: Local = { name: 'st', type: 'struct a', kind: 'bytes' };
    const r = mapFrame(serve(SITES, [st]), serve(SITES, [{ ...st, type: 'struct b' }]));
    expect(r.problems).toEqual([
      `function 'serve': local 'st' changes type from 'struct a' to 'struct b'; give its value in patch.yaml:\n  frames:\n    serve:\n      locals: { st: { init: "<C expression>" } }`,
    ]);
    const given = mapFrame(serve(SITES, [st]), serve(SITES, [{ ...st, type: 'struct b' }]), {
      locals: { st: { init: '(struct b){0}' } },
    });
    expect(given.problems).toEqual([]);
  });

  it('reports a by-value local of a type whose layout the patch changes, even under the same type name', () => {
    const conns: Local = { name: 'conns', type: 'struct conn[4]', kind: 'bytes' };
    const other: Local = { name: 'x', type: 'struct connection', kind: 'bytes' };
    const r = mapFrame(serve(SITES, [conns, other]), serve(SITES, [conns, other]), undefined, {
      changedTypes: new Set(['struct conn']),
    });
    expect(r.problems).toEqual([
      expect.stringMatching(
        /local 'conns' has type 'struct conn\[4\]', whose layout or values the patch changes.*locals: \{ conns: \{ init:/s,
      ),
    ]);
    expect(r.map.locals).toEqual([{ local: 'x', from: 'old-local', oldLocal: 'x' }]);
  });

  it('re-runs a simple initializer of a new local, and zeroes one without', () => {
    const a: Local = { name: 'a', type: 'int', kind: 'int', initializer: 'simple' };
    const b: Local = { name: 'b', type: 'int', kind: 'int', initializer: 'complex' };
    const c: Local = { name: 'c', type: 'int', kind: 'int' };
    const r = mapFrame(serve(SITES, []), serve(SITES, [a, b, c]));
    expect(r.problems).toEqual([]);
    expect(r.map.locals).toEqual([
      { local: 'a', from: 'initializer' },
      { local: 'b', from: 'zero', note: expect.stringMatching(/starts at zero.*patch\.yaml/) },
      { local: 'c', from: 'zero', note: expect.any(String) },
    ]);
    expect(frameMapEntries(r.map)).toEqual([]);
    expect(describeFrameMap(r.map)).toBe(
      'serve: a ← its initializer, b ← zero, c ← zero; resume: 3 sites unchanged',
    );
  });

  it('drops old locals no new local takes', () => {
    const r = mapFrame(serve(SITES), serve(SITES, [fd]));
    expect(r.problems).toEqual([]);
    expect(r.map.locals).toEqual([{ local: 'fd', from: 'old-local', oldLocal: 'fd' }]);
  });
});

describe('mapFrame: a parameter the signature change adds', () => {
  it('takes the argument of the call made again, with no entry and no problem', () => {
    const limit: Local = { name: 'limit', type: 'long', kind: 'int', param: true };
    const r = mapFrame(serve(SITES), serve(SITES, [fd, limit, served, buf]));
    expect(r.problems).toEqual([]);
    expect(r.map.locals[1]).toEqual({ local: 'limit', from: 'argument' });
    expect(frameMapEntries(r.map)).toEqual([]);
    expect(describeFrameMap(r.map)).toContain("limit ← the call's argument");
  });
});

describe('whyNotRebuildable', () => {
  it('names a local whose address outlives the calls it is passed to, and its line', () => {
    expect(whyNotRebuildable(serve(SITES))).toBeUndefined();
    const held: Local = { name: 'stats', type: 'struct stats', kind: 'bytes', escapesAt: 42 };
    expect(whyNotRebuildable(serve(SITES, [fd, held]))).toMatch(/local 'stats' .*line 42.*make it static/);
  });
});

describe('mapFrame: an enum the patch renumbers', () => {
  it('does not carry a local of it (it would name another state)', () => {
    const st: Local = { name: 'st', type: 'enum state', kind: 'int' };
    const r = mapFrame(serve(SITES, [fd, st]), serve(SITES, [fd, st]), {}, { changedTypes: new Set(['enum state']) });
    expect(r.problems).toEqual([expect.stringMatching(/local 'st' has type 'enum state', whose layout or values the patch changes/)]);
  });
});
