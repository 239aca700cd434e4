import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LineProcess } from './line-process';

const ROOT = resolve(__dirname, '../../..');
const DSU = join(ROOT, 'apps/cli/bin/dsu.js');
const run = promisify(execFile);

/** `dsu <args> --json`: its JSON object and exit code (failures included). */
async function dsu(args: string[]): Promise<{ code: number; json: Record<string, unknown> }> {
  try {
    const { stdout } = await run(process.execPath, [DSU, ...args, '--json'], {
      maxBuffer: 1 << 26,
      timeout: 300_000,
    });
    return { code: 0, json: JSON.parse(stdout.trim().split('\n').pop() as string) };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    const line = (e.stdout ?? '').trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`dsu ${args.join(' ')}: ${e.stderr}`);
    return { code: e.code ?? 1, json: JSON.parse(line) };
  }
}

// The counter of test/fixtures/safety/split: the patch may only be applied at 'top' and once
// three requests have been served (a predicate compiled into the patch, checked by the runtime).
describe('when-conditions from patch.yaml', () => {
  let work: string;
  let bundle: string;
  let exe: string;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'dsu-when-'));
    const src = join(ROOT, 'test/fixtures/safety/split');
    const spec = join(work, 'patch.yaml');
    writeFileSync(spec, 'when:\n  points: [top]\n  predicate: "requests >= 3"\n  deadlineMs: 60000\n');
    for (const v of ['v1', 'v2']) {
      const built = await dsu([
        'build',
        join(src, v),
        '--out',
        join(work, v),
        ...(v === 'v2' ? ['--layout-from', join(work, 'v1')] : []),
      ]);
      expect(built.code).toBe(0);
    }
    exe = join(work, 'v1', 'count');
    bundle = join(work, 'patch');
    expect(
      (await dsu(['patch', join(work, 'v1'), join(work, 'v2'), '--out', bundle, '--spec', spec])).code,
    ).toBe(0);
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('checks the points statically and leaves the predicate to the runtime', async () => {
    const checked = await dsu(['check', bundle]);
    expect(checked.code).toBe(0);
    expect(checked.json.updatePoints).toEqual({
      allowed: ['top'],
      // 'mid' is inside the request, after code the new version split off: its frame cannot be
      // rebuilt without mixing versions, so activeness denies it too
      denied: [{ name: 'mid', rules: ['activeness', 'when-condition'] }],
    });
  });

  it('holds the update back while the predicate is false, says so, and applies once it holds', async () => {
    const runDir = join(work, 'run');
    mkdirSync(runDir, { recursive: true });
    const p = new LineProcess(exe, { DSU_RUN_DIR: runDir, DSU_CONTROL: 'eager' });
    try {
      expect(await p.request('a')).toBe('#1 a');
      // one more request: the condition is false at the 'top' after it
      const early = dsu([
        'apply',
        bundle,
        '--pid',
        String(p.pid),
        '--run-dir',
        runDir,
        '--timeout-ms',
        '5000',
      ]);
      await new Promise((r) => setTimeout(r, 2500)); // dsu apply has started, verified and armed the update
      expect(await p.request('b')).toBe('#2 b');
      const refused = await early;
      expect(refused.json.outcome).toBe('timeout');
      expect(String(refused.json.reasons)).toContain("the patch's when-condition (requests >= 3) is false");
      expect(await p.request('c')).toBe('#3 c');
      const later = dsu([
        'apply',
        bundle,
        '--pid',
        String(p.pid),
        '--run-dir',
        runDir,
        '--timeout-ms',
        '10000',
      ]);
      await new Promise((r) => setTimeout(r, 2500));
      expect(await p.request('d')).toBe('#4 d');
      expect((await later).json).toMatchObject({ outcome: 'applied', updatePoint: 'top' });
      expect(await p.request('e')).toBe('#5 e');
    } finally {
      await p.stop();
    }
  }, 120_000);
});
