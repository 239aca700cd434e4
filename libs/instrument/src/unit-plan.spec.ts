import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit } from '@dsu/c-frontend';
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
});
