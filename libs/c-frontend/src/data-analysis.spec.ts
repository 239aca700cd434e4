import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit, buildProgramModel, findClang, summarizeUnit, type UnitAnalysis } from './index';

// What the front end learns for live data updates: which structs may get room (and why not),
// allocation sites with their type, raw uses of whole instances, memory from untracked sources.
const UNIT = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
struct conn { int fd; long seen; struct conn *next; };
typedef struct { char name[10]; short s; } rec_t;
struct __attribute__((packed)) wire { int a; char b; };
struct flex { int n; char data[]; };
union u { int i; float f; };
struct outer { struct inner { int x; } in; int y; };
struct tagged { enum { A, B } kind; int v; };
struct bits { enum { C1, C2 } mode : 2; int w; };
typedef struct { unsigned char digest[4]; } canon_t;
struct pt { int x, y; };
typedef struct pt pt_t;
_Static_assert(sizeof(canon_t) == sizeof(unsigned int), "xxhash checks its canonical size");
static int pt_sum(pt_t *p) { do { _Static_assert(sizeof(pt_t) == 8, "in a body, through a typedef"); } while (0); return p->x + p->y; }
int pt_use(pt_t *p) { return pt_sum(p); }
struct __attribute__((annotate("dsu_room=" "128"))) big { int q; };
struct __attribute__((annotate("dsu_no_room"))) mine { int z; };
struct disk { int id; char title[16]; };
struct lib { int k; };
extern void lib_use(struct lib *l);
extern void *pool_get(void);
static struct conn *make(void) { struct conn *c = malloc(sizeof *c); return c; }
static rec_t *many(int n) { return calloc((size_t)n, sizeof(rec_t)); }
static void save(FILE *f, struct disk *d, struct conn *c, struct conn *c2) {
  fwrite(d, sizeof *d, 1, f);
  memcpy(c, c2, sizeof *c);   /* struct to struct: layout-neutral */
  free(c2);
}
static struct conn *carve(char *arena, int i) { return (struct conn *)(arena + i * 64); }
static void other(struct lib *l) { lib_use(l); struct conn *p = pool_get(); (void)p; void (*f)(void *) = free; f(0); }
int main(void) { struct conn *c = make(); rec_t *r = many(3); (void)r; save(stdout, 0, c, make()); other(0); return 0; }
`;

describe('data analysis (issue 4)', () => {
  let dir: string;
  let a: UnitAnalysis;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-cfe-data-'));
    writeFileSync(join(dir, 'u.c'), UNIT);
    a = await analyzeUnit({ source: 'u.c', flags: ['-O2', '-c', 'u.c'], cwd: dir, clang: findClang().path });
  }, 60000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('classifies struct definitions, with the reason when they keep their C layout', () => {
    const r = Object.fromEntries(a.records.map((x) => [x.key, x]));
    expect(r['struct conn']).toMatchObject({ updatable: true, spelling: 'struct conn' });
    expect(r['rec_t']).toMatchObject({ updatable: true, spelling: 'rec_t' });
    // the typedef declaration starts before the struct: the room's shape goes in front of it
    expect(a.preprocessed.toString('latin1', r['rec_t'].declStart, r['rec_t'].declStart + 7)).toBe('typedef');
    expect(r['struct wire'].notUpdatableReason).toMatch(/packed/);
    expect(r['struct flex'].notUpdatableReason).toMatch(/flexible array member/);
    expect(r['union u'].notUpdatableReason).toMatch(/union/);
    // Types defined inside a body get room: the struct names them through its shape (issue 14).
    expect(r['struct outer']).toMatchObject({ updatable: true, nested: [{ member: 'in', pointers: 0, dimensions: 0 }] });
    expect(r['struct tagged']).toMatchObject({ updatable: true, nested: [{ member: 'kind' }] });
    // a size the program asserts keeps its C layout (lighttpd's xxhash), here and program-wide
    expect(r['canon_t'].notUpdatableReason).toMatch(/static assertion/);
    expect(r['struct pt'].notUpdatableReason).toMatch(/static assertion/);
    expect(r['struct bits'].notUpdatableReason).toMatch(/enum inside its body \(an unnamed enum is the type of a bit-field\)/);
    expect(r['struct big']).toMatchObject({ updatable: true, slop: 128 });
    expect(r['struct mine'].notUpdatableReason).toMatch(/DSU_NO_ROOM/);
  });

  it('finds typed allocation sites, free references and untracked sources', () => {
    expect(a.allocSites.map((s) => [s.function, s.name, s.typeKey])).toEqual([
      ['u.c::make', 'malloc', 'struct conn'],
      ['u.c::many', 'calloc', 'rec_t'],
    ]);
    expect(a.freeRefs.map((f) => [f.function, f.name])).toEqual([
      ['u.c::save', 'free'],
      ['u.c::other', 'free'],
    ]);
    expect(a.untracked).toEqual([
      { type: 'struct conn', function: 'u.c::carve', source: "pointer arithmetic on a 'char *'" },
      { type: 'struct conn', function: 'u.c::other', source: 'pool_get' },
    ]);
  });

  it('makes types whose whole instances are raw bytes or go outside the program non-updatable', () => {
    expect(a.rawUses).toEqual([
      { type: 'canon_t', callee: '_Static_assert', function: 'file scope of u.c', kind: 'io' },
      { type: 'struct pt', callee: '_Static_assert', function: 'file scope of u.c', kind: 'io' },
      { type: 'struct disk', callee: 'fwrite', function: 'u.c::save', kind: 'io' },
      { type: 'struct lib', callee: 'lib_use', function: 'u.c::other', kind: 'external' },
    ]);
    const m = buildProgramModel('p', 'b', [summarizeUnit(a)]);
    expect(m.types['struct disk'].updatable).toBe(false);
    expect(m.types['struct disk'].notUpdatableReason).toMatch(
      /read or written as raw bytes by 'fwrite' \(in u.c::save\)/,
    );
    expect(m.types['struct lib'].notUpdatableReason).toMatch(/handed to the outside function 'lib_use'/);
    expect(m.types['struct conn'].updatable).toBe(true);
    expect(m.types['enum (unnamed)']).toBeUndefined();
  });
});
