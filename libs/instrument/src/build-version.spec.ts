import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVersion } from './build-version';

describe('buildVersion limits', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-build-limits-'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'main.c'), 'int main(void) { return 0; }\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stops a build that writes more than the output limit, with the reason', async () => {
    const build = buildVersion(join(dir, 'src'), join(dir, 'out'), {
      command: 'yes "warning: this line repeats" | head -c 5000000; make CC=$CC main',
      maxOutputBytes: 100_000,
    });
    await expect(build).rejects.toThrow(/stopped because it wrote more than 100000 bytes of output/);
  });

  it('stops a build that runs too long, compilers it started included', async () => {
    const marker = join(dir, 'still-running');
    const t0 = Date.now();
    // a grandchild of the build shell: must die with the build, not finish later
    const build = buildVersion(join(dir, 'src'), join(dir, 'out'), {
      command: `sh -c 'sleep 3; touch ${marker}' & wait`,
      timeoutMs: 500,
    });
    await expect(build).rejects.toThrow(/stopped because it ran longer than 500 ms/);
    expect(Date.now() - t0).toBeLessThan(2500);
    await new Promise((r) => setTimeout(r, 3500));
    expect(existsSync(marker)).toBe(false);
  }, 15_000);

  it('refuses an --update-point whose function the program does not have', async () => {
    const build = buildVersion(join(dir, 'src'), join(dir, 'out'), {
      command: 'make CC=$CC main',
      updatePoints: ['nosuch:loop'],
    });
    await expect(build).rejects.toThrow(/--update-point nosuch:loop: the program has no function 'nosuch'/);
  }, 120_000);

  it('builds a program within the limits and records it', async () => {
    const built = await buildVersion(join(dir, 'src'), join(dir, 'out'), {
      command: 'make CC=$CC main',
      maxOutputBytes: 1_000_000,
      timeoutMs: 120_000,
      updatePoints: ['main:entry'],
    });
    expect(built.executable).toBe('main');
    expect(JSON.parse(readFileSync(join(dir, 'out', 'build.json'), 'utf8'))).toMatchObject({
      buildId: built.buildId,
    });
  }, 120_000);
});
