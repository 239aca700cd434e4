import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type AstNode } from './ast';
import { findClang } from './clang';
import { frameSites, type FrameSite, type FunctionFrameInfo } from './frame-sites';
import { DEFAULT_BLOCKING_FUNCTIONS } from './known-functions';

// Stack-frame facts of real C functions: the unit is preprocessed (line markers, system headers)
// and dumped by clang as dsu-cc does, then each function is read on its own.
const SOURCE = `#include <poll.h>
#include <unistd.h>
#include <string.h>
struct config { int port; };
struct config *current;
int handle(int fd);
int serve_once(int fd);
int f(int a);
void dsu__update_point(const char *name);
#define DSU_UPDATE_POINT(name) do { static int dsu__site_; if (!dsu__site_) dsu__update_point(name); } while (0)

void main_loop(int fd) {
  struct pollfd fds[1];
  fds[0].fd = fd;
  fds[0].events = POLLIN;
  for (;;) {
    int n = poll(fds, 1, -1);
    if (n > 0) handle(fd);
  }
}

int linklocal(int fd) {
  int n = 0;
  if (({ const int *__a = &fd; *__a > 2; })) n++;
  return handle(n);
}

void server(int fd) {
  while (serve_once(fd) >= 0)
    ;
}

int side(int a) {
  int x;
  x = f(a);
  x = f(a++);
  return f(x);
}

ssize_t reader(int fd) {
  char buf[64];
  ssize_t r = read(fd, buf, sizeof buf);
  char *p = buf;
  char *q;
  q = &buf[1];
  memset(p, 0, sizeof buf);
  r = read(fd, buf + 8, 8);
  buf[0] = 0;
  return r;
}

void publish(void) {
  struct config cfg = { 8080 };
  static int calls;
  calls++;
  current = &cfg;
  handle(cfg.port);
}

void scopes(int a, unsigned b) {
  {
    int inner = a + 1;
    handle(inner);
  }
  int after = 0;
  handle(after);
}

void vla(int n) {
  char tmp[n];
  handle(n);
}

void twice(int fd) {
  handle(fd);
  handle(fd + 1);
}

void via(int fd) {
  int (*cb)(int) = handle;
  cb(fd);
}

void pointy(int fd) {
  int k = fd;
  DSU_UPDATE_POINT("tick");
  if (k) dsu__update_point("direct");
}
`;

/** The line of the first line holding `needle` (after the line holding `after`). */
const lineOf = (needle: string, after = ''): number => {
  const lines = SOURCE.split('\n');
  const from = after ? lines.findIndex((l) => l.includes(after)) : 0;
  const i = lines.findIndex((l, k) => k >= from && l.includes(needle));
  if (i < 0) throw new Error(`no line with ${needle}`);
  return i + 1;
};

let text: Buffer;
const fns = new Map<string, AstNode>();
const PROGRAM = new Set(['handle', 'serve_once', 'f']);

beforeAll(async () => {
  const clang = findClang().path;
  const dir = mkdtempSync(join(tmpdir(), 'dsu-frames-'));
  try {
    writeFileSync(join(dir, 'u.c'), SOURCE);
    text = (await run(clang, ['-E', '-x', 'c', 'u.c', '-o', '-'], { cwd: dir, what: 'preprocessing' }))
      .stdout;
    writeFileSync(join(dir, 'u.i'), text);
    const ast = await run(clang, ['-Xclang', '-ast-dump=json', '-fsyntax-only', 'u.i'], {
      cwd: dir,
      what: 'ast',
    });
    const tu = JSON.parse(ast.stdout.toString('utf8')) as AstNode;
    for (const d of tu.inner ?? []) {
      if (d.kind === 'FunctionDecl' && d.name && d.inner?.some((c) => c.kind === 'CompoundStmt'))
        fns.set(d.name, d);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

const info = (name: string): FunctionFrameInfo => {
  const fn = fns.get(name);
  if (!fn) throw new Error(`no function ${name}`);
  return frameSites(fn, text, {
    isProgramFunction: (n) => PROGRAM.has(n),
    blocking: new Set(DEFAULT_BLOCKING_FUNCTIONS),
    pointFunctions: new Set(['dsu__update_point']),
  });
};
const slice = (r: { start: number; end: number }) => text.toString('utf8', r.start, r.end);
const site = (i: FunctionFrameInfo, id: string): FrameSite => {
  const s = i.sites.find((x) => x.id === id);
  if (!s) throw new Error(`no site ${id} in ${i.sites.map((x) => x.id).join(', ')}`);
  return s;
};

describe('frameSites', () => {
  it('finds the wait and call sites of a main loop with their forms and locals', () => {
    const i = info('main_loop');
    expect(i.sites.map((s) => s.id)).toEqual(['wait:poll#0', 'call:handle#0']);
    const poll = site(i, 'wait:poll#0');
    expect(poll).toMatchObject({
      kind: 'wait',
      callee: 'poll',
      form: 'decl',
      inBracelessBody: false,
      resumable: true,
    });
    expect(poll.line).toBe(lineOf('int n = poll'));
    expect(poll.locals).toEqual(['fd', 'fds', 'n']);
    expect(slice(poll.statement)).toBe('int n = poll(fds, 1, -1);');
    const handle = site(i, 'call:handle#0');
    expect(handle).toMatchObject({ kind: 'call', form: 'expr', inBracelessBody: true, resumable: true });
    expect(handle.reason).toBeUndefined();
    expect(handle.locals).toEqual(['fd', 'fds', 'n']);
    expect(slice(handle.statement)).toBe('handle(fd);');
    const n = i.locals.find((l) => l.name === 'n');
    expect(n).toMatchObject({ kind: 'int', param: false, static: false, vla: false });
    expect(n?.initializer?.simple).toBe(false);
    expect(slice(n?.decl ?? { start: 0, end: 0 })).toBe('int n = poll(fds, 1, -1);');
  });

  it('does not resume a call inside a loop condition and says where it is', () => {
    const [s] = info('server').sites;
    expect(s).toMatchObject({ id: 'call:serve_once#0', form: 'nested', resumable: false });
    expect(s.reason).toContain(`serve_once() at line ${lineOf('while (serve_once')}`);
    expect(s.reason).toContain('condition of a while loop');
  });

  it('tells plain assignments from calls with side effects in their arguments and returns', () => {
    const i = info('side');
    expect(i.sites.map((s) => [s.id, s.form, s.resumable])).toEqual([
      ['call:f#0', 'assign', true],
      ['call:f#1', 'assign', false],
      ['call:f#2', 'return', false],
    ]);
    expect(site(i, 'call:f#1').reason).toMatch(new RegExp(`line ${lineOf('f(a++)')}.*side effects`));
    expect(slice(site(i, 'call:f#0').statement)).toBe('x = f(a);');
  });

  it('notes an array local whose address goes to a call and to local pointers, not its indexing or sizeof', () => {
    const i = info('reader');
    const buf = i.locals.find((l) => l.name === 'buf');
    expect(buf).toMatchObject({ kind: 'bytes', addressTaken: true });
    expect(buf?.addressUses).toEqual([
      { line: lineOf('ssize_t r = read'), use: 'call-arg' },
      { line: lineOf('char *p = buf'), use: 'local-pointer' },
      { line: lineOf('q = &buf[1]'), use: 'local-pointer' },
      // pointer arithmetic keeps following where the address goes
      { line: lineOf('buf + 8'), use: 'call-arg' },
    ]);
    expect(i.locals.find((l) => l.name === 'p')).toMatchObject({ kind: 'ptr', addressTaken: false });
    expect(i.locals.find((l) => l.name === 'r')?.kind).toBe('int');
    // memset is a library call, not a site
    expect(i.sites.map((s) => s.id)).toEqual(['wait:read#0', 'wait:read#1']);
  });

  it('reports an address stored into a global as escaping, and keeps static locals out of the frame', () => {
    const i = info('publish');
    const cfg = i.locals.find((l) => l.name === 'cfg');
    expect(cfg).toMatchObject({ kind: 'bytes', addressTaken: true, static: false });
    expect(cfg?.addressUses).toEqual([{ line: lineOf('current = &cfg'), use: 'escapes' }]);
    expect(cfg?.initializer?.simple).toBe(false); // not a scalar
    expect(i.locals.find((l) => l.name === 'calls')).toMatchObject({ static: true, addressTaken: false });
    expect(site(i, 'call:handle#0').locals).toEqual(['cfg']);
  });

  it('lists parameters first and a local of an inner block only inside it', () => {
    const i = info('scopes');
    expect(i.locals.map((l) => [l.name, l.param, l.kind])).toEqual([
      ['a', true, 'int'],
      ['b', true, 'uint'],
      ['inner', false, 'int'],
      ['after', false, 'int'],
    ]);
    expect(i.sites.map((s) => s.locals)).toEqual([
      ['a', 'b', 'inner'],
      ['a', 'b', 'after'],
    ]);
    const inner = i.locals.find((l) => l.name === 'inner');
    expect(inner?.initializer?.simple).toBe(true);
    expect(slice(inner?.scope ?? { start: 0, end: 0 })).toMatch(/^= a \+ 1;\s*handle\(inner\);\s*}$/);
  });

  it('keeps a local of a statement expression (libc macros such as IN6_IS_ADDR_LINKLOCAL) out of later statements', () => {
    const i = info('linklocal');
    expect(site(i, 'call:handle#0').locals).toEqual(['fd', 'n']);
  });

  it('does not resume with a variable-length array in scope', () => {
    const i = info('vla');
    expect(i.locals.find((l) => l.name === 'tmp')?.vla).toBe(true);
    expect(i.locals.find((l) => l.name === 'n')?.vla).toBe(false);
    const [s] = i.sites;
    expect(s).toMatchObject({ form: 'expr', resumable: false });
    expect(s.reason).toMatch(/variable-length array tmp .*line \d+/);
  });

  it('numbers the calls of one callee in source order', () => {
    const i = info('twice');
    expect(i.sites.map((s) => [s.id, s.ordinal, s.line])).toEqual([
      ['call:handle#0', 0, lineOf('handle(fd);', 'void twice')],
      ['call:handle#1', 1, lineOf('handle(fd + 1)')],
    ]);
  });

  it('takes a call through a function pointer local as a call site named by the pointer', () => {
    const i = info('via');
    expect(i.locals.find((l) => l.name === 'cb')?.kind).toBe('ptr');
    expect(i.sites).toHaveLength(1);
    expect(i.sites[0]).toMatchObject({
      kind: 'call',
      callee: 'cb',
      id: 'call:cb#0',
      form: 'expr',
      resumable: true,
    });
    expect(i.sites[0].locals).toEqual(['fd', 'cb']);
  });

  it('takes update points, expanded or called directly, as point sites of their whole statement', () => {
    const i = info('pointy');
    expect(i.locals.map((l) => l.name)).toEqual(['fd', 'k']); // not the macro's static
    const [tick, direct] = i.sites;
    expect(tick).toMatchObject({
      kind: 'point',
      callee: 'tick',
      id: 'point:tick',
      form: 'expr',
      resumable: true,
    });
    expect(slice(tick.statement)).toMatch(/^do \{ static int dsu__site_;.*\} while \(0\);$/);
    expect(tick.locals).toEqual(['fd', 'k']);
    expect(tick.inBracelessBody).toBe(false);
    expect(direct).toMatchObject({ id: 'point:direct', inBracelessBody: true, line: lineOf('"direct"') });
  });
});
