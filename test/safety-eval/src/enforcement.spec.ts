import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, readBundle, socketPath } from '@dsu/control-client';
import { CASES } from './cases';
import { LineProcess } from './line-process';
import { buildCase, forcedBundle, type BuiltCase } from './run-case';

const permission = CASES.find((c) => c.fixture === 'permission');

/**
 * The permission example with handle() named a transaction at build time only: the runtime does
 * not know it, so the checker's allowed points are all that keeps an update out of the middle of
 * a request. Under a stream of requests, repeated updates and rollbacks: a non-admin never gets a
 * private path. The same load with a bundle allowed at 'mid' shows the check is needed.
 */
describe('the runtime applies only at the points the checker allows', () => {
  let work: string;
  let built: BuiltCase;
  beforeAll(async () => {
    if (!permission) throw new Error('no permission case');
    work = mkdtempSync(join(tmpdir(), 'dsu-enforce-'));
    built = await buildCase(
      { ...permission, fixture: 'permission-config', build: ['--transaction', 'handle'] },
      work,
    );
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** Requests under load while the bundle is applied and rolled back `cycles` times; counts forbidden replies. */
  async function underLoad(
    bundle: string,
    cycles: number,
  ): Promise<{ forbidden: number; served: number; applied: number }> {
    const runDir = join(work, `run-${Date.now()}`);
    mkdirSync(runDir, { recursive: true });
    const p = new LineProcess(built.exe, { DSU_RUN_DIR: runDir, DSU_CONTROL: 'eager' });
    let forbidden = 0;
    let served = 0;
    let applied = 0;
    try {
      for (let t = 0; t < 100 && !existsSync(socketPath(p.pid, runDir)); t++)
        await new Promise((r) => setTimeout(r, 50));
      const control = await ControlClient.connect(p.pid, runDir);
      const load = async (until: Promise<unknown>) => {
        let done = false;
        void until.finally(() => (done = true));
        for (let i = 0; !done || i < 20; i++) {
          const reply = await p.request(i % 5 === 4 ? 'bob /public/x' : 'bob /secret');
          served++;
          if (reply === 'OK /secret') forbidden++;
          if (reply === undefined) throw new Error(`no reply: ${p.stderr}`);
        }
      };
      const { manifest, soPath } = readBundle(bundle);
      for (let c = 0; c < cycles; c++) {
        const staged = await control.stage(soPath, manifest.soSha256, manifest.patchId);
        expect(staged.ok).toBe(true);
        const commit = control.commit(10_000);
        await load(commit);
        if ((await commit).outcome === 'applied') applied++;
        const back = control.rollback(10_000);
        await load(back);
        expect((await back).outcome).toBe('applied');
      }
      control.close();
    } finally {
      await p.stop();
    }
    return { forbidden, served, applied };
  }

  it('never lets a request run its first half in the old version and its second in the new one', async () => {
    expect(built.manifest.allowedUpdatePoints).toEqual(['top']);
    const r = await underLoad(built.bundle, 10);
    expect(r.applied).toBe(10);
    expect(r.forbidden).toBe(0);
  }, 120_000);

  it('does, with a bundle that allows the point inside the transaction', async () => {
    const forced = await forcedBundle(built, 'mid', work);
    const r = await underLoad(forced, 10);
    expect(r.applied).toBe(10);
    expect(r.forbidden).toBeGreaterThan(0);
  }, 120_000);
});
