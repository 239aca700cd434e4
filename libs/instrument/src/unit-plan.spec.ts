import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit, findClang } from '@dsu/c-frontend';
import { applyEdits } from './edits';
import { planUnit, quiescenceFreeFunctions } from './unit-plan';

const UNIT = `
#include <stdio.h>
#include <string.h>
#include <poll.h>
int other(int);
static int sq(int x) { return x * x; }
static int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += sq(i); return s + (int)strlen("ab"); }
static int ext(int n) { return other(n) + sq(n); }
static int blocks(void) { poll(0, 0, 0); return sq(2); }
static int viaptr(int (*f)(int)) { return f(3); }
static int gives(void) { return viaptr(sq); }
static int later(int);
static int early(int n) { return later(n); }
static int later(int n) { return n + 1; }
static int loop(int n) { while (n > 0) n = sum(n) - 1; return n; }
int top(int n) { printf("%d\\n", sum(n)); return ext(n) + blocks() + gives() + early(n) + loop(n); }
`;

describe('inlinable calls', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-inline-'));
    writeFileSync(join(dir, 'u.c'), UNIT);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const analyze = () => analyzeUnit({ source: 'u.c', flags: ['-O2'], cwd: dir, skipLayout: true });

  it('finds the functions that can never be on a stack at a quiescent point', async () => {
    const quiet = await analyze().then((a) => quiescenceFreeFunctions(a));
    // sq, sum: only local quiet callees and libc; later/early: local; not ext (another unit's
    // function could block), blocks (poll), viaptr (call through a pointer), gives (hands out &sq),
    // top (calls those); loop is quiet until an update point is configured in it.
    expect([...quiet].sort()).toEqual(['u.c::early', 'u.c::later', 'u.c::loop', 'u.c::sq', 'u.c::sum']);
    const configured = await analyze().then((a) =>
      quiescenceFreeFunctions(a, [{ function: 'loop', where: 'loop' }]),
    );
    expect(configured.has('u.c::loop')).toBe(false);
  });

  it('calls the implementation directly from quiet callers, and only where it is already defined', async () => {
    const a = await analyze();
    const plan = planUnit(a, []);
    expect(plan.inlinable?.map(([f, c]) => `${f}->${c}`).sort()).toEqual([
      'u.c::loop->u.c::sum',
      'u.c::sum->u.c::sq',
    ]);
    // early -> later stays a slot call: later is defined after early
    const text = plan.edits.filter((e) => e.text.includes('__dsu_impl_')).map((e) => e.text);
    expect(text.some((t) => /__dsu_impl_u[0-9a-f]+__sq$/.test(t))).toBe(true);
  });

  it('calls quiet callees from other callers through a guard on the slot', async () => {
    const a = await analyze();
    const plan = planUnit(a, []);
    // quiet callees defined earlier, called from callers that may be active at a quiescent point
    expect(plan.guarded?.map(([f, c]) => `${f}->${c}`).sort()).toEqual([
      'top->u.c::early',
      'top->u.c::loop',
      'top->u.c::sum',
      'u.c::blocks->u.c::sq',
      'u.c::ext->u.c::sq',
    ]);
    const text = applyEdits(a.preprocessed, plan.edits).toString('utf8');
    const sq = /__dsu_g_(u[0-9a-f]+__sq)\b/.exec(text)?.[1];
    expect(sq).toBeDefined();
    // calls the implementation while the slot holds it, the slot otherwise
    expect(text).toContain(
      `static __inline__ __attribute__((always_inline, unused)) int __dsu_g_${sq}(int x) { void *__dsu_f = __atomic_load_n(&__dsu_slot_${sq}, __ATOMIC_RELAXED);` +
        ` if (__builtin_expect(__dsu_f == (void *)&__dsu_impl_${sq}, 1)) return __dsu_impl_${sq}(x); return ((__typeof__(&__dsu_impl_${sq}))__dsu_f)(x); }`,
    );
    expect(text).toContain(`return other(n) + __dsu_g_${sq}(n);`);
    // a callee defined later, or one that is not quiet, stays a slot call
    expect(text).not.toMatch(/__dsu_g_u[0-9a-f]+__(later|viaptr|ext|blocks|gives)\b/);
    // no line added but the prelude's (debug line information stays right)
    expect(text.split('\n').length).toBe(a.preprocessed.toString('utf8').split('\n').length + 1);
    writeFileSync(join(dir, 'u.inst.i'), text);
    execFileSync(findClang().path, ['-fsyntax-only', '-Wall', '-Werror', '-x', 'cpp-output', join(dir, 'u.inst.i')]);
  });

  it('guards void functions and leaves headers it cannot reuse to the slot', async () => {
    writeFileSync(
      join(dir, 'g.c'),
      [
        '#include <stdarg.h>',
        'static int n;',
        'static void bump(int by) { n += by; }',
        'static int sumv(int k, ...) { va_list ap; int s; va_start(ap, k); s = va_arg(ap, int); va_end(ap); return s + k; }',
        '__attribute__((noinline)) static int attr(int x) { return x + 1; }',
        'static int kr(x) int x; { return x; }',
        'int use(int (*f)(int)) { bump(2); return sumv(1, 2) + attr(3) + kr(4) + f(5); }',
        '',
      ].join('\n'),
    );
    const a = await analyzeUnit({ source: 'g.c', flags: ['-O2', '-std=c89'], cwd: dir, skipLayout: true });
    const plan = planUnit(a, []);
    expect(plan.guarded?.map(([f, c]) => `${f}->${c}`)).toEqual(['use->g.c::bump']);
    const text = applyEdits(a.preprocessed, plan.edits).toString('utf8');
    expect(text).toMatch(/void __dsu_g_u[0-9a-f]+__bump\(int by\) \{ void \*__dsu_f = [^}]*\{ __dsu_impl_u[0-9a-f]+__bump\(by\); return; \} \(\(__typeof__/);
    writeFileSync(join(dir, 'g.inst.i'), text);
    // strict C89 (no `inline` keyword): the guard spells it __inline__
    execFileSync(findClang().path, ['-fsyntax-only', '-std=c89', '-Wall', '-Werror', '-Wno-deprecated-non-prototype', '-x', 'cpp-output', join(dir, 'g.inst.i')]);
  });
});
