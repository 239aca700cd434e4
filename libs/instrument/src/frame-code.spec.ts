import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit, findClang } from '@dsu/c-frontend';
import { applyEdits } from './edits';
import { locateRuntime } from './runtime-location';
import { planUnit } from './unit-plan';

// What dsu-cc gives the functions that can be on a stack at an update point: the forms real
// event loops are written in (a wait assigned to a local, a braceless call, a call nested in a
// condition, a point, a configured loop point), compiled as strictly as a -Werror build would.
const UNIT = `#include <poll.h>
#include <unistd.h>
#include <dsu.h>
struct conn { int fd; char buf[32]; };
int handle(struct conn *c);
static int quiet_helper(int x) { return x * 2; }
int handle(struct conn *c) {
  ssize_t r = read(c->fd, c->buf, sizeof c->buf);
  DSU_UPDATE_POINT("handled");
  return (int)r + quiet_helper(1);
}
void serve(int fd) {
  struct conn c = { fd, { 0 } };
  const int limit = 10;
  int served = 0;
  for (;;) {
    struct pollfd p = { fd, POLLIN, 0 };
    int n;
    n = poll(&p, 1, -1);
    if (n <= 0)
      continue;
    if (handle(&c) < 0)
      break;
    if (served > limit)
      handle(&c);
    served = served + quiet_helper(n);
  }
}
static void tick(int *state) { while (*state < 100) { *state += 1; } }
int main(int argc, char **argv) {
  int state = 0;
  (void)argv;
  serve(argc);
  tick(&state);
  return state;
}
`;

describe('capture and resume code', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-frames-'));
    writeFileSync(join(dir, 'u.c'), UNIT);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const plan = async (points: { function: string; where: 'entry' | 'loop' }[] = []) => {
    const a = await analyzeUnit({
      source: 'u.c',
      flags: ['-O2', '-I', locateRuntime().includeDir],
      cwd: dir,
      skipLayout: true,
      frames: true,
    });
    return { a, p: planUnit(a, points) };
  };

  it('gives resumable functions their sites and compiles warning-free', async () => {
    const { a, p } = await plan([{ function: 'tick', where: 'loop' }]);
    const byKey = new Map(p.frames?.functions.map((f) => [f.key, f]));
    expect(byKey.get('handle')?.sites).toEqual(['wait:read#0', 'wait:read#0:again', 'point:handled']);
    // The nested call in a condition is a no-resume region; the braceless one is a site.
    expect(byKey.get('serve')?.sites).toEqual(['wait:poll#0', 'wait:poll#0:again', 'call:handle#1']);
    expect(p.frames?.noResume).toEqual([expect.objectContaining({ key: 'serve', reason: expect.stringMatching(/condition of an if statement/) })]);
    expect(byKey.get('main')?.sites).toEqual(['call:serve#0', 'call:tick#0']);
    expect(byKey.get('u.c::tick')?.sites).toEqual(['point:tick:loop']);
    // quiet_helper can never be on a stack at a point: no frame code, and its calls are no sites
    expect(byKey.has('u.c::quiet_helper')).toBe(false);
    expect(byKey.get('serve')?.locals.map((l) => l.name)).toEqual(['fd', 'c', 'limit', 'served', 'p', 'n']);
    const text = applyEdits(a.preprocessed, p.edits);
    const out = join(dir, 'u.inst.i');
    writeFileSync(out, text);
    execFileSync(findClang().path, ['-O2', '-Wall', '-Wextra', '-Werror', '-c', '-x', 'cpp-output', out, '-o', join(dir, 'u.o')]);
    // main is entered through the runtime (which enters it again after an unwind)
    expect(text.toString()).toContain('return __dsu_cc_run_main(&__dsu_slot_main,');
    // inserted text stays on the lines it belongs to (debug line info unchanged; the prelude is a
    // line of its own before the unit's first line marker)
    expect(text.toString().split('\n').length).toBe(a.preprocessed.toString().split('\n').length + 1);
  });

  it('leaves functions without frame code when asked', async () => {
    const a = await analyzeUnit({ source: 'u.c', flags: ['-I', locateRuntime().includeDir], cwd: dir, skipLayout: true, frames: true });
    const p = planUnit(a, [], { frames: false });
    expect(p.frames).toBeUndefined();
    expect(applyEdits(a.preprocessed, p.edits).toString()).not.toContain('__dsu_cc_frame');
  });

  it('refuses a function whose update point has no literal name', async () => {
    writeFileSync(
      join(dir, 'v.c'),
      '#include <poll.h>\n#include <dsu.h>\nvoid spin(const char *name) { for (;;) { poll(0, 0, 10); dsu__update_point(name); } }\n',
    );
    const a = await analyzeUnit({ source: 'v.c', flags: ['-I', locateRuntime().includeDir], cwd: dir, skipLayout: true, frames: true });
    const p = planUnit(a);
    expect(p.frames?.functions).toEqual([]);
    expect(p.frames?.refused).toEqual([{ key: 'spin', reason: expect.stringMatching(/no literal name/) }]);
  });

  it('places FUNC:loop on every loop form, braceless bodies included (compiled warning-free)', async () => {
    writeFileSync(
      join(dir, 'w.c'),
      [
        '#include <poll.h>',
        'static volatile int running = 3, spins = 0, rounds = 0;',
        'static int poll_once(void) { spins++; return poll(0, 0, 0); }',
        'int braceless(void) { while (running-- > 0) poll_once(); return spins; }',
        'int forever(void) { for (;;) { if (rounds++ >= 2) break; poll(0, 0, 0); } return rounds; }',
        'int dowhile(int n) { do poll(0, 0, 0); while (--n > 0); return n; }',
        '',
      ].join('\n'),
    );
    const a = await analyzeUnit({ source: 'w.c', flags: ['-I', locateRuntime().includeDir], cwd: dir, skipLayout: true, frames: true });
    const points = ['braceless', 'forever', 'dowhile'].map((f) => ({ function: f, where: 'loop' as const }));
    const p = planUnit(a, points);
    expect(p.updatePoints).toEqual(['braceless:loop', 'forever:loop', 'dowhile:loop']);
    const text = applyEdits(a.preprocessed, p.edits).toString();
    // the one-statement bodies are braced around the point and the statement (and its frame code)
    expect(text).toMatch(/while \(running-- > 0\) \{ \{ static struct __dsu_point_site_v1 __dsu_ps_0 = \{ "braceless:loop"[^\n]*poll_once[^\n]*\} \}[^\n]*return spins;/);
    expect(text).toMatch(/do \{ \{ static struct __dsu_point_site_v1 __dsu_ps_2 = \{ "dowhile:loop"[^\n]*dsu_poll\(0, 0, 0\);[^\n]*\} while \(--n > 0\)/);
    for (const f of ['braceless', 'forever', 'dowhile'])
      expect(p.frames?.functions.find((x) => x.key === f)?.sites).toContain(`point:${f}:loop`);
    writeFileSync(join(dir, 'w.inst.i'), text);
    execFileSync(findClang().path, ['-O2', '-Wall', '-Wextra', '-Werror', '-c', '-x', 'cpp-output', join(dir, 'w.inst.i'), '-o', join(dir, 'w.o')]);
  });

  it('tells same-named locals of different blocks apart and marks unresumable statements warning-free', async () => {
    writeFileSync(
      join(dir, 's.c'),
      [
        '#include <unistd.h>',
        'long long arg(int i);',
        'const char *name(int k);',
        'void say(const char *s);',
        'long long split(int which) {',
        '  if (which) {',
        '    long long start = arg(1);',
        '    return start;',
        '  }',
        '  long long start = arg(2);',
        '  say(name((int)start));',
        '  usleep(1);',
        '  return start;',
        '}',
        '',
      ].join('\n'),
    );
    const a = await analyzeUnit({ source: 's.c', flags: [], cwd: dir, skipLayout: true, frames: true });
    const p = planUnit(a);
    const f = p.frames?.functions.find((x) => x.key === 'split');
    expect(f?.sites).toEqual(['call:arg#0', 'call:arg#1', 'wait:usleep#0', 'wait:usleep#0:again']);
    // say(name(...)): its argument calls a program function, so it cannot be made again
    expect(p.frames?.noResume).toEqual([expect.objectContaining({ key: 'split', reason: expect.stringMatching(/say\(\).*side effects/) }), expect.objectContaining({ key: 'split' })]);
    writeFileSync(join(dir, 's.inst.i'), applyEdits(a.preprocessed, p.edits));
    execFileSync(findClang().path, ['-O2', '-Wall', '-Wextra', '-Werror', '-c', '-x', 'cpp-output', join(dir, 's.inst.i'), '-o', join(dir, 's.o')]);
  });

  it('gives no frame code to a noreturn function (it could not return when unwound)', async () => {
    writeFileSync(
      join(dir, 'n.c'),
      [
        '#include <stdlib.h>',
        '#include <unistd.h>',
        'void say(const char *s);',
        '__attribute__((noreturn)) void die(const char *why);',
        'void die(const char *why) { say(why); usleep(1); exit(1); }',
        '_Noreturn void quit(int code) { say("bye"); exit(code); }',
        'int run(int n) { if (n < 0) die("negative"); usleep(1); return n; }',
        '',
      ].join('\n'),
    );
    const a = await analyzeUnit({ source: 'n.c', flags: [], cwd: dir, skipLayout: true, frames: true });
    const p = planUnit(a);
    expect(p.frames?.functions.map((f) => f.key)).toEqual(['run']);
    writeFileSync(join(dir, 'n.inst.i'), applyEdits(a.preprocessed, p.edits));
    execFileSync(findClang().path, ['-O2', '-Wall', '-Wextra', '-Werror', '-c', '-x', 'cpp-output', join(dir, 'n.inst.i'), '-o', join(dir, 'n.o')]);
  });
});
