import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, ControlError, listProcesses, socketPath } from './index';

const runtime = join(__dirname, '../../runtime');

// A real program linked with libdsu: the runtime's control thread answers on its socket.
const PROGRAM = `
#include <time.h>
#include <stdio.h>
extern int dsu_nanosleep(const struct timespec *, struct timespec *);
int main(void) {
  struct timespec ts = { 0, 20 * 1000 * 1000 };
  printf("ready\\n"); fflush(stdout);
  for (int i = 0; i < 3000; i++) dsu_nanosleep(&ts, 0);
  return 0;
}
`;

describe('ControlClient against a live process', () => {
  let dir: string;
  let runDir: string;
  let child: ChildProcess;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-ctl-'));
    runDir = join(dir, 'run');
    writeFileSync(join(dir, 'p.c'), PROGRAM);
    execFileSync('cc', ['-O2', '-o', join(dir, 'p'), join(dir, 'p.c'), '-rdynamic', '-Wl,--whole-archive', join(runtime, 'build/libdsu.a'), '-Wl,--no-whole-archive', '-ldl', '-pthread']);
    child = spawn(join(dir, 'p'), [], { env: { ...process.env, DSU_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    for (let i = 0; i < 100 && !existsSync(socketPath(child.pid as number, runDir)); i++) await new Promise((r) => setTimeout(r, 20));
  });
  afterAll(() => {
    child?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('says hello and reports status', async () => {
    const c = await ControlClient.connect(child.pid as number, runDir);
    try {
      const h = await c.hello();
      expect(h).toMatchObject({ ok: true, protocol: 1, pid: child.pid, program: 'unknown' });
      const s = await c.status();
      expect(s.patches).toEqual([]);
      expect(s.threads.length).toBe(1);
    } finally {
      c.close();
    }
  });

  it('gets a refusal, not a crash, for a bad patch and a bad request', async () => {
    const c = await ControlClient.connect(child.pid as number, runDir);
    try {
      const staged = await c.stage('/nonexistent/patch.so', 'a'.repeat(64), 'p1');
      expect(staged).toMatchObject({ ok: false, outcome: 'refused' });
      const bad = await c.request('FROBNICATE now');
      expect(bad.ok).toBe(false);
      expect(String(bad.error)).toMatch(/valid requests/);
      await expect(c.commit(100)).resolves.toMatchObject({ ok: false, outcome: 'refused' });
      expect((await c.hello()).pid).toBe(child.pid);
    } finally {
      c.close();
    }
  });

  it('lists the process and explains a missing socket', async () => {
    const procs = await listProcesses(runDir);
    expect(procs.map((p) => p.pid)).toEqual([child.pid]);
    await expect(ControlClient.connect(999999, runDir)).rejects.toThrow(ControlError);
    await expect(ControlClient.connect(999999, runDir)).rejects.toThrow(/no control socket/);
  });
});
