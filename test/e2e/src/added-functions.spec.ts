// Patches that add functions (issue 3: "changes to function bodies, added functions and removed
// functions"), on a running process: v2 adds an external varargs function and a file static and
// calls them from a changed function; v3 takes the address of v2's added function (the patch binds
// to the slot the first patch defined) and calls it through the pointer; rollback returns to v2.
// The process prints one line per tick, so every step is checked on its own output.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { makeTempDir, removeDir } from './support/fixtures';

const HEAD = '#include <stdio.h>\n#include <unistd.h>\n#include <stdarg.h>\nstatic int bonus(int x) { return x; }\n';
const MAIN = 'int main(void) { for (int i = 0;; i++) { printf("%d\\n", tick(i)); fflush(stdout); usleep(10000); } }\n';
const ADDED =
  'int sumv(int n, ...) { va_list ap; va_start(ap, n); int s = 0; for (int k = 0; k < n; k++) s += va_arg(ap, int); va_end(ap); return s; }\n' +
  'static int triple(int x) { return 3 * x; }\n';
const VERSIONS: Record<string, string> = {
  v1: HEAD + 'int tick(int i) { return bonus(i); }\n' + MAIN,
  v2: HEAD + ADDED + 'int tick(int i) { return 1000000 + sumv(2, triple(bonus(i)), 0); }\n' + MAIN,
  v3: HEAD + ADDED + 'int tick(int i) { int (*f)(int, ...) = sumv; return 2000000 + f(3, triple(bonus(i)), 1, 1); }\n' + MAIN,
};

let work = '';
let runDir = '';
let proc: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  work = makeTempDir('dsu-e2e-added-');
  runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
  for (const [v, source] of Object.entries(VERSIONS)) {
    const src = path.join(work, 'src', v);
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'main.c'), source);
    fs.writeFileSync(path.join(src, 'Makefile'), 'ticker: main.c\n\t$(CC) -O2 -o ticker main.c\n');
    const r = await dsu(['build', src, '--out', path.join(work, 'build', v), '--label', v]);
    expect(r.code).toBe(0);
  }
  for (const [a, b] of [['v1', 'v2'], ['v2', 'v3']]) {
    const r = await dsu(['patch', path.join(work, 'build', a), path.join(work, 'build', b), '--out', path.join(work, `${a}-${b}`)]);
    expect(r.code).toBe(0);
    // dsu apply takes only checked, signed bundles: dsu check signs with the local key
    expect(await dsu(['check', path.join(work, `${a}-${b}`)])).toMatchObject({ code: 0, json: { verdict: 'approved' } });
  }
}, 180_000);

afterAll(() => {
  proc?.kill('SIGKILL');
  if (work) removeDir(work);
});

/** The value of the last complete line the process printed after `mark` characters of output. */
async function nextValue(): Promise<number> {
  const mark = output.length;
  for (let i = 0; i < 200; i++) {
    const lines = output.slice(mark).split('\n');
    if (lines.length >= 3) return Number(lines[lines.length - 2]);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no output from the process; so far:\n${output.slice(-500)}`);
}

it('adds functions with a patch, binds a later patch to them, and rolls back', async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(work, 'v1-v2', 'manifest.json'), 'utf8')) as {
    functions: { key: string; change: string }[];
  };
  expect(manifest.functions.map((f) => [f.key, f.change]).sort()).toEqual([
    ['main.c::triple', 'added'],
    ['sumv', 'added'],
    ['tick', 'body'],
  ]);

  proc = spawn(path.join(work, 'build', 'v1', 'ticker'), { env: { ...process.env, DSU_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  const pid = proc.pid as number;
  expect(await nextValue()).toBeLessThan(1000000);

  const apply = (bundle: string) => dsu(['apply', path.join(work, bundle), '--pid', String(pid), '--run-dir', runDir]);
  expect(await apply('v1-v2')).toMatchObject({ code: 0, json: { outcome: 'applied' } });
  let v = await nextValue();
  expect([Math.floor(v / 1000000), (v % 1000000) % 3]).toEqual([1, 0]); // 1000000 + 3i

  expect(await apply('v2-v3')).toMatchObject({ code: 0, json: { outcome: 'applied' } });
  v = await nextValue();
  expect([Math.floor(v / 1000000), ((v % 1000000) - 2) % 3]).toEqual([2, 0]); // 2000000 + 3i + 2

  expect(await dsu(['rollback', '--pid', String(pid), '--run-dir', runDir])).toMatchObject({ code: 0, json: { outcome: 'applied' } });
  v = await nextValue();
  expect(Math.floor(v / 1000000)).toBe(1);
  expect(proc.exitCode).toBeNull();
}, 120_000);
