import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from './program';
import { runSmoke } from './commands/smoke';

describe('dsu command', () => {
  it('lists its commands in --help', () => {
    expect(buildProgram().helpInformation()).toMatch(/smoke/);
  });

  it('runs the smoke pipeline end to end with a real compiler, database and bus', async () => {
    const home = mkdtempSync(join(tmpdir(), 'dsu-home-'));
    const prev = process.env.DSU_HOME;
    process.env.DSU_HOME = home;
    try {
      const lines: string[] = [];
      const r = await runSmoke((l) => lines.push(l));
      expect(r.output).toBe('hello from a program built by the dsu smoke pipeline\n');
      expect(r.events).toEqual(['dsu.build.requested.v1', 'dsu.build.completed.v1']);
      expect(r.sourceSha256).not.toBe(r.executableSha256);
      expect(lines.join('\n')).toMatch(/correlation kept/);
      expect(lines.join('\n')).not.toMatch(/dead-letter/);
    } finally {
      process.env.DSU_HOME = prev;
      if (prev === undefined) delete process.env.DSU_HOME;
      rmSync(home, { recursive: true, force: true });
    }
  }, 60_000);
});
