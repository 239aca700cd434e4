import type { ProgramModel } from '@dsu/c-frontend';
import type { PatchManifest } from '@dsu/patch-format';
import { fn, model } from '../test/models';
import { manifestOf, modelOf } from '../test/versions';
import { capacity } from './capacity';
import { checkSafety } from './check-safety';
import { initializer } from './initializer';
import { safetyContext } from './safety-context';
import { signature } from './signature';
import { startupGlobal } from './startup-global';
import { untrackedInstances } from './untracked-instances';
import { whenConditions } from './when-conditions';

describe('the two real failures every earlier guard approved (headerserver v1 -> v2)', () => {
  let v1: ProgramModel;
  let v2: ProgramModel;
  let manifest: PatchManifest;
  beforeAll(async () => {
    [v1, v2] = await Promise.all([
      modelOf('headerserver', 'v1', 'server.c'),
      modelOf('headerserver', 'v2', 'server.c'),
    ]);
    manifest = manifestOf(v1, v2);
  }, 60000);

  it('rejects a layout change of connections that come from an allocator wrapper (untracked-instances)', () => {
    const f = untrackedInstances(safetyContext({ from: v1, to: v2, manifest }));
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({
      rule: 'untracked-instances',
      severity: 'error',
      location: 'struct connection',
    });
    expect(f[0].message).toMatch(/xmalloc/);
  });

  it('rejects a new global that only startup code sets (startup-global)', () => {
    const f = startupGlobal(safetyContext({ from: v1, to: v2, manifest }));
    expect(f.map((x) => [x.rule, x.severity, x.location])).toEqual([
      ['startup-global', 'error', 'server.c::extra_headers'],
    ]);
    expect(f[0].message).toMatch(/only its startup code sets it \(server\.c::setup_listener\(\)\)/);
    // a value given by patch.yaml's state transformer lifts it
    expect(
      startupGlobal(safetyContext({ from: v1, to: v2, manifest, initializedGlobals: ['extra_headers'] })),
    ).toEqual([]);
  });

  it('reports a changed version string with its old and new value (initializer)', () => {
    const f = initializer(safetyContext({ from: v1, to: v2, manifest }));
    const name = f.find((x) => x.location?.endsWith('server_name'));
    expect(name?.message).toContain('from "headerserver/1.0" to "headerserver/1.1"');
  });

  it('rejects the patch as a whole', () => {
    const v = checkSafety({ from: v1, to: v2, manifest });
    expect(v.verdict).toBe('rejected');
    expect(
      v.findings
        .filter((f) => f.severity === 'error')
        .map((f) => f.rule)
        .sort(),
    ).toEqual(['startup-global', 'untracked-instances']);
  });
});

const manifestWith = (m: Partial<PatchManifest>): PatchManifest => ({
  format: 1,
  patchId: 'x',
  program: 'p',
  from: { buildId: 'b', version: '1' },
  to: { buildId: 'c', version: '2' },
  soSha256: '0'.repeat(64),
  functions: [],
  types: [],
  globals: [],
  allowedUpdatePoints: [],
  ...m,
});

describe('rules over hand-made models', () => {
  it('startup-global: a global main also sets in its loop is not startup-only', () => {
    const write = (at: number) => ({ kind: 'write' as const, name: 'g', at, line: at });
    const from = model(fn('main'));
    const startupOnly = model(
      fn('main', [], { globalsWritten: ['g'], flow: [write(1)], loops: [{ start: 10, end: 90 }] }),
    );
    const alsoInLoop = model(
      fn('main', [], { globalsWritten: ['g'], flow: [write(1), write(20)], loops: [{ start: 10, end: 90 }] }),
    );
    const manifest = manifestWith({ globals: [{ key: 'g', change: 'added' }] });
    expect(startupGlobal(safetyContext({ from, to: startupOnly, manifest })).map((f) => f.rule)).toEqual([
      'startup-global',
    ]);
    expect(startupGlobal(safetyContext({ from, to: alsoInLoop, manifest }))).toEqual([]);
  });

  it('capacity: a struct that outgrows its room is an error', () => {
    const t = {
      name: 'struct s',
      oldLayoutHash: 'a',
      newLayoutHash: 'b',
      oldSize: 16,
      newSize: 40,
      capacity: 32,
      mode: 'eager' as const,
      transformer: '',
      fields: [],
      instances: { heap: '', globals: [], embeddedIn: [] },
    };
    const m = model(fn('main'));
    expect(
      capacity(safetyContext({ from: m, to: m, manifest: manifestWith({ types: [t] }) }))[0],
    ).toMatchObject({ rule: 'capacity', severity: 'error' });
    expect(
      capacity(safetyContext({ from: m, to: m, manifest: manifestWith({ types: [{ ...t, newSize: 32 }] }) })),
    ).toEqual([]);
  });

  it('signature: callers left out of the patch and stored pointers are errors', () => {
    const from = model(fn('main', ['scaled', 'other']), fn('scaled'), fn('other', ['scaled']));
    const to = model(
      fn('main', ['scaled', 'other']),
      fn('scaled', [], { signature: 'long (long)' }),
      fn('other', ['scaled']),
    );
    const only = manifestWith({
      functions: [
        { key: 'scaled', change: 'signature' },
        { key: 'main', change: 'body' },
      ],
    });
    const f = signature(safetyContext({ from, to, manifest: only }));
    expect(f).toHaveLength(1);
    expect(f[0].message).toMatch(/its callers other\(\) are not in the patch/);
    const all = manifestWith({ functions: [...only.functions, { key: 'other', change: 'body' }] });
    expect(signature(safetyContext({ from, to, manifest: all }))).toEqual([]);
    const withPointer = model(fn('main', ['scaled']), fn('scaled', [], { addressTaken: true }));
    expect(signature(safetyContext({ from: withPointer, to, manifest: all }))[0].message).toMatch(
      /address is taken/,
    );
  });

  it('when-conditions: points outside the list and active listed functions are denied; predicates are left to the runtime', () => {
    const m = model(
      fn('main', ['worker']),
      fn('worker', [], { flow: [{ kind: 'point', name: 'w', at: 1, line: 1 }] }),
    );
    const ctx = (when: object) => safetyContext({ from: m, to: m, manifest: manifestWith({}), when });
    expect(whenConditions(ctx({ points: ['top'] })).flatMap((f) => f.updatePoints)).toEqual(['late', 'w']);
    expect(whenConditions(ctx({ inactive: ['worker'] })).flatMap((f) => f.updatePoints)).toEqual(['w']);
    expect(
      whenConditions(ctx({ points: ['nope'] })).some(
        (f) => f.severity === 'error' && /does not have/.test(f.message),
      ),
    ).toBe(true);
    expect(whenConditions(ctx({ predicate: 'conn_count == 0' }))[0].severity).toBe('info');
  });

  it('activeness: a replaced caller on the stack denies the point below it, not the one beside it', () => {
    const m = model(
      fn('main', ['worker']),
      fn('worker', [], { flow: [{ kind: 'point', name: 'w', at: 1, line: 1 }] }),
    );
    const v = checkSafety(
      { from: m, to: m, manifest: manifestWith({ functions: [{ key: 'worker', change: 'body' }] }) },
      ['activeness'],
    );
    expect(v.updatePoints).toEqual({
      allowed: ['late', 'top'],
      denied: [{ name: 'w', rules: ['activeness'] }],
    });
  });
});
