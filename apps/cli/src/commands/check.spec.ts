import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computePatchId, type PatchManifest } from '@dsu/patch-format';
import { createOutput } from '../output';
import { checkCommand } from './local';

// `dsu check` on a bundle whose manifest has a frame map: main (an event loop, always on the
// stack) is replaced, and its frame is rebuilt in the new code instead of the point being denied.

/** A program model whose main has the update point 'top' and capture code (dsu-cc's frame facts). */
const programModel = (buildId: string, bodyHash: string) => ({
  format: 1,
  program: 'loop',
  buildId,
  units: [],
  globals: {},
  types: {},
  functions: {
    main: {
      key: 'main',
      name: 'main',
      unit: 'loop.c',
      isStatic: false,
      signature: 'int (void)',
      bodyHash,
      calls: [],
      indirectCalls: [],
      addressTaken: false,
      variadic: false,
      typesUsed: [],
      globalsRead: [],
      globalsWritten: [],
      updatePoints: ['top'],
      transactions: [],
      loops: [{ start: 0, end: 10 }],
      flow: [{ kind: 'point', name: 'top', at: 1, line: 5 }],
    },
  },
  instrumentation: {
    units: [
      {
        path: 'loop.c',
        plan: {
          functions: [],
          updatePoints: [],
          frames: {
            functions: [{ key: 'main', entry: '', sites: ['point:top'], locals: [] }],
            refused: [],
            noResume: [],
          },
        },
      },
    ],
  },
});

function writeBundle(dir: string): void {
  mkdirSync(join(dir, 'models'), { recursive: true });
  const so = 'so v2';
  writeFileSync(join(dir, 'patch.so'), so);
  writeFileSync(join(dir, 'models', 'from.json'), JSON.stringify(programModel('b1', 'h1')));
  writeFileSync(join(dir, 'models', 'to.json'), JSON.stringify(programModel('b2', 'h2')));
  const body: Omit<PatchManifest, 'patchId'> = {
    format: 1,
    program: 'loop',
    from: { buildId: 'b1', version: 'v1' },
    to: { buildId: 'b2', version: 'v2' },
    soSha256: createHash('sha256').update(so).digest('hex'),
    functions: [{ key: 'main', change: 'body', newSymbol: '__dsu_impl_main__v2', reasons: ['body changed'] }],
    types: [],
    globals: [],
    allowedUpdatePoints: ['top'],
    frames: [
      {
        key: 'main',
        sites: [{ from: 'point:top', to: 'point:top', how: 'same' }],
        locals: [{ local: 'n', from: 'initializer', expression: '0' }],
      },
    ],
  };
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({ ...body, patchId: computePatchId(body, Buffer.from(so)) }),
  );
}

describe('dsu check: stack-frame maps', () => {
  let home: string;
  const saved = process.env.DSU_HOME;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'dsu-check-'));
    process.env.DSU_HOME = home;
  });
  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(home, { recursive: true, force: true });
    process.env.DSU_HOME = saved;
  });

  it('prints a line per frame map and approves the point in the replaced main', async () => {
    const dir = join(home, 'b');
    writeBundle(dir);
    const printed: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void printed.push(l));
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await checkCommand(dir, createOutput(false));
    jest.restoreAllMocks();
    expect(printed).toContain('frames: main: n ← 0; resume: 1 site unchanged');
    expect(printed).toContainEqual(
      expect.stringMatching(
        /^info: activeness \(main \(loop\.c:5\)\): .*its frame will be rebuilt in the new code \(main: n ← 0; resume: 1 site unchanged\)$/,
      ),
    );
    expect(printed).toContain('update points allowed: top');
    expect(printed[printed.length - 1]).toBe('verdict: approved');
    expect(code).toBe(0);
  });
});
