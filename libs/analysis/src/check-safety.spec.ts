import type { ProgramModel } from '@dsu/c-frontend';
import { manifestOf, modelOf } from '../test/versions';
import { checkSafety } from './check-safety';

describe('checkSafety on the permission example (a check moved between two calls of one request)', () => {
  let v1: ProgramModel;
  let v2: ProgramModel;
  beforeAll(async () => {
    [v1, v2] = await Promise.all([
      modelOf('permission', 'v1', 'files.c'),
      modelOf('permission', 'v2', 'files.c'),
    ]);
  }, 60000);

  it('denies the point inside the transaction by version consistency and allows the loop head', () => {
    const v = checkSafety({ from: v1, to: v2, manifest: manifestOf(v1, v2) });
    expect(v.updatePoints.allowed).toEqual(['top']);
    expect(v.updatePoints.denied).toEqual([{ name: 'mid', rules: ['version-consistency'] }]);
    expect(v.verdict).toBe('approved');
    const f = v.findings.find((x) => x.rule === 'version-consistency');
    expect(f?.message).toMatch(
      /at 'mid' \(files\.c:\d+\) transaction 'request' has already run authenticate\(\) \(files\.c:\d+\)/,
    );
    expect(f?.message).toMatch(/would run serve\(\) \(files\.c:\d+\) in the new one/);
  });

  it('lets every point through without the version-consistency rule (what the other guards see)', () => {
    const v = checkSafety({ from: v1, to: v2, manifest: manifestOf(v1, v2) }, ['activeness', 'con-freeness']);
    expect(v.updatePoints.allowed).toEqual(['mid', 'top']);
  });

  it('treats a function named as a transaction like one marked in the source', () => {
    // the same program with the markers' transaction dropped: handle() configured instead
    const strip = (m: ProgramModel): ProgramModel =>
      structuredClone({
        ...m,
        functions: Object.fromEntries(
          Object.entries(m.functions).map(([k, f]) => [
            k,
            { ...f, flow: f.flow?.filter((s) => !s.kind.startsWith('txn')) },
          ]),
        ),
      });
    const [a, b] = [strip(v1), strip(v2)];
    expect(checkSafety({ from: a, to: b, manifest: manifestOf(a, b) }).updatePoints.allowed).toEqual([
      'mid',
      'top',
    ]);
    const v = checkSafety({ from: a, to: b, manifest: manifestOf(a, b), transactions: ['handle'] });
    expect(v.updatePoints.denied).toEqual([{ name: 'mid', rules: ['version-consistency'] }]);
  });
});

describe('checkSafety on the stack-struct example (a frame keeps an instance of a changed type)', () => {
  let v1: ProgramModel;
  let v2: ProgramModel;
  beforeAll(async () => {
    [v1, v2] = await Promise.all([
      modelOf('stackstruct', 'v1', 'stats.c'),
      modelOf('stackstruct', 'v2', 'stats.c'),
    ]);
  }, 60000);

  it('denies the point inside the frame by activeness and con-freeness and allows the one between sessions', () => {
    const v = checkSafety({ from: v1, to: v2, manifest: manifestOf(v1, v2) });
    expect(v.updatePoints.allowed).toEqual(expect.arrayContaining(['top']));
    expect(v.updatePoints.denied).toContainEqual({ name: 'inner', rules: ['activeness', 'con-freeness'] });
    const c = v.findings.find((x) => x.rule === 'con-freeness');
    expect(c?.message).toMatch(
      /the old code of stats\.c::run_session\(\) continues and uses struct stats concretely \(stats\.c:\d+\)/,
    );
    expect(v.verdict).toBe('approved');
  });

  it('denies the same point by con-freeness alone', () => {
    const v = checkSafety({ from: v1, to: v2, manifest: manifestOf(v1, v2) }, ['con-freeness']);
    expect(v.updatePoints.denied.map((d) => d.name)).toContain('inner');
    expect(v.updatePoints.allowed).toContain('top');
  });
});
