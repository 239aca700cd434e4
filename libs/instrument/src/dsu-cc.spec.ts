import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDsuCc } from './dsu-cc';

// One unit with the C features instrumentation must not change: statics (file and function
// local), recursion, varargs through a stub, function pointers compared and stored in a table,
// a callback given to libc (qsort), a signal handler, and a blocking call.
const PROGRAM = `
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <poll.h>
static int counter = 3;
static int calls(void) { static int n; return ++n; }
static long fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }
int say(const char *fmt, ...) { va_list ap; va_start(ap, fmt); int r = vprintf(fmt, ap); va_end(ap); return r; }
static int cmp(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
typedef long (*unary)(int);
static unary table[] = { fact, 0 };
static volatile sig_atomic_t got;
static void on_usr1(int s) { got = s; }
int main(void) {
  int v[] = { 5, 1, 4 };
  qsort(v, 3, sizeof v[0], cmp);
  signal(SIGUSR1, on_usr1);
  raise(SIGUSR1);
  poll(0, 0, 1);
  int (*p)(const char *, ...) = say;
  int c1 = calls(), c2 = calls(); /* argument evaluation order is unspecified (gcc and clang differ) */
  say("%d %ld %ld %d %d %d\\n", counter++, fact(10), table[0](5), c1, c2, p == &say);
  p("%s %.1f %d%d%d %d\\n", "varargs", 2.5, v[0], v[1], v[2], got == SIGUSR1);
  return counter == 4 ? 0 : 1;
}
`;

describe('dsu-cc', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-cc-'));
    writeFileSync(join(dir, 'prog.c'), PROGRAM);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ctx = () => ({ cwd: dir, env: { ...process.env, DSU_DISABLE: '1' }, log: (l: string) => console.error(l) });

  it('compiles and links a program that behaves exactly like the native build', async () => {
    execFileSync('cc', ['-O2', '-o', join(dir, 'native'), join(dir, 'prog.c')]);
    expect(await runDsuCc(['-O2', '-Wall', '-Wextra', '-c', 'prog.c', '-o', 'prog.o'], ctx())).toBe(0);
    expect(await runDsuCc(['-O2', 'prog.o', '-o', 'prog'], ctx())).toBe(0);
    const native = execFileSync(join(dir, 'native'), { encoding: 'utf8' });
    const instrumented = execFileSync(join(dir, 'prog'), { encoding: 'utf8', env: { ...process.env, DSU_DISABLE: '1' } });
    expect(instrumented).toBe(native);
    expect(native).toBe('3 3628800 120 1 2 1\nvarargs 2.5 145 1\n');

    // Every function got a slot; statics have unique exported names; libdsu is linked in.
    const symbols = execFileSync('nm', [join(dir, 'prog')], { encoding: 'utf8' });
    for (const f of ['main', 'say']) expect(symbols).toMatch(new RegExp(` D __dsu_slot_${f}\\b`));
    expect(symbols).toMatch(/ D __dsu_slot_u[0-9a-f]{8}__fact\b/);
    expect(symbols).toMatch(/ [DB] __dsu_s_u[0-9a-f]{8}__counter\b/);
    expect(symbols).toMatch(/ [DB] __dsu_s_u[0-9a-f]{8}__calls__n\b/);
    expect(symbols).toMatch(/ T dsu_poll\b/);
    const model = JSON.parse(readFileSync(join(dir, 'prog.dsu.json'), 'utf8'));
    expect(Object.keys(model.functions).sort()).toEqual(['main', 'prog.c::calls', 'prog.c::cmp', 'prog.c::fact', 'prog.c::on_usr1', 'say']);
    expect(model.functions['prog.c::fact'].addressTaken).toBe(true);
    expect(model.buildId).toMatch(/^[0-9a-f]{32}$/);
  }, 60_000);

  it('logs the steps of each unit with DSU_CC_TIMING=1 (one probe, the layouts of the instrumented unit)', async () => {
    writeFileSync(
      join(dir, 'timed.c'),
      'struct rec { int id; unsigned on : 1; };\nstruct rec *mk(void);\nint get(struct rec *r) { return r->id + r->on; }\n',
    );
    const lines: string[] = [];
    const env = { ...process.env, DSU_DISABLE: '1', DSU_CC_TIMING: '1' };
    expect(await runDsuCc(['-O2', '-c', 'timed.c', '-o', 'timed.o'], { cwd: dir, env, log: (l) => lines.push(l) })).toBe(0);
    const t = JSON.parse(lines.find((l) => l.startsWith('{"dsuCcTiming"')) ?? '{}');
    expect(t.dsuCcTiming).toBe('timed.c');
    expect(Object.keys(t.marks)).toEqual(expect.arrayContaining(['analyze', 'plan', 'edits', 'compile', 'layoutProbe', 'sidecar']));
    expect(t.layoutMethod).toBe('instrumented-stripped');
    const summary = JSON.parse(readFileSync(join(dir, 'timed.o.dsu.json'), 'utf8')).summary;
    const rec = summary.types.find((x: { key: string }) => x.key === 'struct rec');
    // the instrumented layout: size = the fields' bytes, capacity = sizeof with room; the bit-field found
    expect([rec.size, rec.capacity > rec.size, rec.fields.map((f: { name: string; offsetBits: number }) => `${f.name}@${f.offsetBits}`)]).toEqual([
      8,
      true,
      ['id@0', 'on@32'],
    ]);
  }, 60_000);

  it('compiles -Wextra -Werror code whose structs get room, and the same sources give the same object', async () => {
    // positional initializers name every field of the source; the room dsu-cc appends is not among them
    writeFileSync(
      join(dir, 'init.c'),
      'struct pt { int x; int y; };\nstruct pt origin = { 1, 2 };\nint norm(struct pt *p) { struct pt q = { p->x, p->y }; return q.x * q.x + q.y * q.y; }\nint main(void) { return norm(&origin) == 5 ? 0 : 1; }\n',
    );
    execFileSync('clang-19', ['-O2', '-g', '-Wextra', '-Werror', '-c', join(dir, 'init.c'), '-o', join(dir, 'native-init.o')]);
    const objects: Buffer[] = [];
    for (let i = 0; i < 2; i++) {
      expect(await runDsuCc(['-O2', '-g', '-Wextra', '-Werror', '-c', 'init.c', '-o', 'init.o'], ctx())).toBe(0);
      objects.push(readFileSync(join(dir, 'init.o')));
    }
    const summary = JSON.parse(readFileSync(join(dir, 'init.o.dsu.json'), 'utf8')).summary;
    expect(summary.types.find((t: { key: string }) => t.key === 'struct pt').capacity).toBeGreaterThan(8);
    expect(objects[1].equals(objects[0])).toBe(true); // no temporary path in the debug info
  }, 60_000);

  it('with DSU_NO_DATA=1 (dsu build --no-data) keeps every struct in its C layout and tracks no allocation', async () => {
    writeFileSync(
      join(dir, 'nodata.c'),
      '#include <stdlib.h>\nstruct pt { int x; int y; };\nint main(void) { struct pt *p = malloc(sizeof *p); p->x = 1; int r = p->x - 1 + (int)sizeof(struct pt) - 8; free(p); return r; }\n',
    );
    const env = { ...process.env, DSU_DISABLE: '1', DSU_NO_DATA: '1' };
    expect(await runDsuCc(['-O2', '-c', 'nodata.c', '-o', 'nodata.o'], { ...ctx(), env })).toBe(0);
    const summary = JSON.parse(readFileSync(join(dir, 'nodata.o.dsu.json'), 'utf8')).summary;
    const pt = summary.types.find((t: { key: string }) => t.key === 'struct pt');
    expect([pt.size, pt.capacity, pt.updatable, pt.notUpdatableReason]).toEqual([8, 8, false, expect.stringContaining('--no-data')]);
    const undefinedSymbols = execFileSync('nm', ['-u', join(dir, 'nodata.o')], { encoding: 'utf8' });
    expect(undefinedSymbols).not.toMatch(/dsu_t?malloc|dsu_free/);
    expect(await runDsuCc(['nodata.o', '-o', 'nodata'], { ...ctx(), env })).toBe(0);
    execFileSync(join(dir, 'nodata'), { env }); // exits 0: sizeof(struct pt) is 8
  }, 60_000);

  it('passes non-C steps through to the real compiler and reports failures with the exit code', async () => {
    writeFileSync(join(dir, 'broken.c'), 'int main(void) { return nope; }\n');
    expect(await runDsuCc(['-c', 'broken.c', '-o', 'broken.o'], ctx())).not.toBe(0);
    expect(await runDsuCc(['--version'], ctx())).toBe(0);
  }, 60_000);

  it('places a configured update point at the head of the main loop', async () => {
    writeFileSync(join(dir, 'loop.c'), 'int work(int n) { int s = 0; for (int i = 0; i < n; i++) { s += i; } return s; }\nint main(void) { return work(3) == 3 ? 0 : 1; }\n');
    const env = { ...process.env, DSU_DISABLE: '1', DSU_UPDATE_POINTS: 'work:loop', DSU_KEEP_INSTRUMENTED: '1' };
    expect(await runDsuCc(['-O2', '-c', 'loop.c', '-o', 'loop.o'], { ...ctx(), env })).toBe(0);
    const text = readFileSync(join(dir, 'loop.o.inst.i'), 'utf8');
    expect(text).toMatch(/for \(int i = 0; i < n; i\+\+\) \{ \{ static struct __dsu_point_site_v1 __dsu_ps_0 = \{ "work:loop"/);
    expect(await runDsuCc(['loop.o', '-o', 'loop'], { ...ctx(), env })).toBe(0);
    execFileSync(join(dir, 'loop'), { env });
  }, 60_000);

  it('takes the units of a static library into the program model', async () => {
    writeFileSync(join(dir, 'lib1.c'), 'int twice(int x) { return 2 * x; }\n');
    writeFileSync(join(dir, 'app.c'), 'int twice(int);\nint main(void) { return twice(21) == 42 ? 0 : 1; }\n');
    for (const u of ['lib1', 'app']) expect(await runDsuCc(['-O2', '-c', `${u}.c`, '-o', `${u}.o`], ctx())).toBe(0);
    execFileSync('ar', ['rcs', 'libone.a', 'lib1.o'], { cwd: dir });
    expect(await runDsuCc(['app.o', 'libone.a', '-o', 'app'], ctx())).toBe(0);
    execFileSync(join(dir, 'app'), { env: { ...process.env, DSU_DISABLE: '1' } });
    const model = JSON.parse(readFileSync(join(dir, 'app.dsu.json'), 'utf8'));
    expect(Object.keys(model.functions).sort()).toEqual(['main', 'twice']);
  }, 60_000);
});
