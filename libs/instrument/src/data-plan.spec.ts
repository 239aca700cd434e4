import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit, findClang } from '@dsu/c-frontend';
import { parseCapacities, parseSlopSpec, planData, typeId } from './data-plan';
import { applyEdits } from './edits';
import { runDsuCc } from './dsu-cc';

// Room for growth and allocation tracking on a real program: updatable structs (heap list,
// typedef of an unnamed struct, a container embedding one, a global array), a packed struct and
// an opted-out one keep their C layout; tracked blocks are counted by the runtime.
const PROGRAM = `
#include <stdio.h>
#include <stdlib.h>
#include <dsu.h>
struct node { int id; int val; struct node *next; };
typedef struct { char name[10]; short s; } rec_t;
struct holder { long tag; struct node n; rec_t r; };
struct __attribute__((packed)) wire { int a; char b; };
struct DSU_NO_ROOM plain { int x; };
struct DSU_ROOM(100) roomy { int y; };
struct node gnodes[3];
static rec_t srec;
int main(void) {
  struct node *head = NULL;
  for (int i = 0; i < 100; i++) { struct node *p = malloc(sizeof *p); p->id = i; p->val = i * 2; p->next = head; head = p; }
  rec_t *r = calloc(4, sizeof(rec_t)); r[1].s = 5;
  struct holder *h = malloc(sizeof(struct holder)); h->n.id = 9;
  long sum = 0; for (struct node *p = head; p; p = p->next) sum += p->val;
  size_t inst = 0, blocks = dsu_tracked_count(dsu_type_id("struct node"), &inst);
  size_t rinst = 0; dsu_tracked_count(dsu_type_id("rec_t"), &rinst);
  printf("sum=%ld r=%d h=%d g=%d s=%d\\n", sum, r[1].s, h->n.id, gnodes[0].id, srec.s);
  fprintf(stderr, "sizes %zu %zu %zu %zu %zu %zu tracked %zu %zu %zu\\n", sizeof(struct node), sizeof(rec_t),
          sizeof(struct holder), sizeof(struct wire), sizeof(struct plain), sizeof(struct roomy), blocks, inst, rinst);
  r = realloc(r, 8 * sizeof(rec_t));
  dsu_tracked_count(dsu_type_id("rec_t"), &rinst);
  void (*f)(void *) = free; f(h); free(r);
  while (head) { struct node *n = head->next; free(head); head = n; }
  blocks = dsu_tracked_count(dsu_type_id("struct node"), &inst);
  fprintf(stderr, "after realloc %zu, after free %zu %zu\\n", rinst, blocks, inst);
  return 0;
}
`;

describe('dsu-cc data instrumentation', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-data-'));
    writeFileSync(join(dir, 'prog.c'), PROGRAM);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const ctx = (env: Record<string, string> = {}) => ({
    cwd: dir,
    env: { ...process.env, DSU_DISABLE: '1', ...env },
    log: (l: string) => console.error(l),
  });

  it('reserves room, keeps C layouts where it must, tracks heap instances, same output as native', async () => {
    expect(await runDsuCc(['-O2', '-c', 'prog.c', '-o', 'prog.o'], ctx())).toBe(0);
    expect(await runDsuCc(['prog.o', '-o', 'prog'], ctx())).toBe(0);
    const run = (exe: string) => execFileSync(exe, { cwd: dir, env: { ...process.env, DSU_DISABLE: '1' }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    const out = run(join(dir, 'prog'));
    expect(out).toBe('sum=9900 r=5 h=9 g=0 s=0\n');
    const stderr = execFileSync('sh', ['-c', './prog 2>&1 >/dev/null'], { cwd: dir, env: { ...process.env, DSU_DISABLE: '1' }, encoding: 'utf8' });
    // node: 16 bytes of fields + 32 slop; rec_t: 12 -> 16 + 32 (room 8-aligned); holder: 8 + 48 + 48 = 104 + 32;
    // packed and opted-out types unchanged; DSU_ROOM(100): 8 + 104
    expect(stderr).toContain('sizes 48 48 136 5 4 112 tracked 100 100 4');
    expect(stderr).toContain('after realloc 8, after free 0 0');

    const model = JSON.parse(readFileSync(join(dir, 'prog.dsu.json'), 'utf8')) as {
      types: Record<string, { size: number; capacity: number; updatable: boolean; notUpdatableReason?: string; fields: { name: string; offsetBits: number }[] }>;
    };
    expect(model.types['struct node']).toMatchObject({ size: 16, capacity: 48, updatable: true });
    expect(model.types['struct holder']).toMatchObject({ size: 104, capacity: 136, updatable: true });
    // offsets as the instrumented program lays them out (the embedded node has its room)
    expect(model.types['struct holder'].fields.map((f) => [f.name, f.offsetBits / 8])).toEqual([['tag', 0], ['n', 8], ['r', 56]]);
    expect(model.types['struct wire']).toMatchObject({ updatable: false, notUpdatableReason: expect.stringMatching(/packed/) });
    expect(model.types['struct plain']).toMatchObject({ updatable: false, notUpdatableReason: expect.stringMatching(/DSU_NO_ROOM/) });
  }, 60_000);

  it('takes slop and capacities from dsu build (DSU_SLOP, DSU_CAPACITY)', async () => {
    expect(await runDsuCc(['-O2', '-o', 'prog2', 'prog.c'], ctx({ DSU_SLOP: 'struct node=64', DSU_CAPACITY: 'rec_t=96' }))).toBe(0);
    const stderr = execFileSync('sh', ['-c', './prog2 2>&1 >/dev/null'], { cwd: dir, env: { ...process.env, DSU_DISABLE: '1' }, encoding: 'utf8' });
    expect(stderr).toMatch(/^sizes 80 96 /m);
    expect(await runDsuCc(['-O2', '-o', 'prog3', 'prog.c'], ctx({ DSU_SLOP: 'struct node=none' }))).toBe(0);
    const s3 = execFileSync('sh', ['-c', './prog3 2>&1 >/dev/null'], { cwd: dir, env: { ...process.env, DSU_DISABLE: '1' }, encoding: 'utf8' });
    expect(s3).toMatch(/^sizes 16 /m);
  }, 60_000);

  it('keeps the C layout of a struct written as raw bytes in another unit (same file as native)', async () => {
    writeFileSync(join(dir, 'rec.h'), 'struct disk { int id; char title[16]; };\nvoid save(const char *path, struct disk *d);\n');
    writeFileSync(join(dir, 'save.c'), '#include <stdio.h>\n#include "rec.h"\nvoid save(const char *path, struct disk *d) { FILE *f = fopen(path, "wb"); fwrite(d, sizeof *d, 1, f); fclose(f); }\n');
    writeFileSync(join(dir, 'use.c'), '#include <stdlib.h>\n#include "rec.h"\nint main(int c, char **v) { (void)c; struct disk *d = calloc(1, sizeof *d); d->id = 7; save(v[1], d); return 0; }\n');
    // use.c is compiled first and cannot know save.c writes whole instances: the link step fixes it
    expect(await runDsuCc(['-O2', '-c', 'use.c', '-o', 'use.o'], ctx())).toBe(0);
    expect(await runDsuCc(['-O2', '-c', 'save.c', '-o', 'save.o'], ctx())).toBe(0);
    expect(await runDsuCc(['use.o', 'save.o', '-o', 'raw'], ctx())).toBe(0);
    execFileSync(join(dir, 'raw'), [join(dir, 'out.bin')], { env: { ...process.env, DSU_DISABLE: '1' } });
    expect(readFileSync(join(dir, 'out.bin')).length).toBe(20);
    const model = JSON.parse(readFileSync(join(dir, 'raw.dsu.json'), 'utf8')) as { types: Record<string, { size: number; capacity: number; updatable: boolean }> };
    expect(model.types['struct disk']).toMatchObject({ size: 20, capacity: 20, updatable: false });
  }, 60_000);

  it('parses --slop and capacities, and computes the runtime type id', () => {
    expect([...parseSlopSpec('struct conn=128, struct wire=none')]).toEqual([
      ['struct conn', 128],
      ['struct wire', 'none'],
    ]);
    expect(() => parseSlopSpec('struct conn')).toThrow(/must look like/);
    expect([...parseCapacities('struct a=96;b_t=40')]).toEqual([
      ['struct a', 96],
      ['b_t', 40],
    ]);
    // FNV-1a 64 of "struct node", as dsu_type_id() in libdsu computes it
    expect(typeId('struct node').toString(16)).toBe('913e2afe9a2817cc');
  });

  it('lazy patches: checks each pointer once where it gets its value, stamps what the code creates', async () => {
    writeFileSync(
      join(dir, 'lazy.c'),
      [
        '#include <string.h>',
        'struct node { int id; long long val; struct node *next; };',
        'struct box { int n; struct node first; };',
        'struct node gnode;',
        'struct box *boxes[4];',
        'long long walk(struct node *head) {',
        '  long long s = 0;',
        '  for (struct node *p = head; p; p = p->next) s += p->val;',
        '  s += boxes[0]->first.val + gnode.val;',
        '  return s;',
        '}',
        'long long sum_array(struct node *a, int n) { long long s = 0; while (n--) { s += a->val; a++; } return s; }',
        'void reset(struct node *p) { memset(p, 0, sizeof *p); struct node tmp; tmp.id = 1; struct node lit = { 1, 2, 0 }; *p = lit; (void)tmp; }',
        'struct node second(struct node *v) { return v[1]; }',
        'long long pair(void) { struct node two[2]; two[0].val = 1; two[1].val = 2; return walk(&two[0]); }',
        'int other(struct node *q) { return q->id; }',
        '',
      ].join('\n'),
    );
    const clang = findClang().path;
    const a = await analyzeUnit({ source: 'lazy.c', flags: ['-O2'], cwd: dir, clang, skipLayout: true });
    const plan = planData(a, {
      capacity: new Map([['struct node', 64], ['struct box', 112]]),
      selected: (k) => k !== 'other',
      typeTable: false,
      lazy: new Map([['struct node', { stamp: '__dsu_lzv_struct_node__vtest' }]]),
    });
    const text = applyEdits(a.preprocessed, plan.edits).toString('utf8');
    // the list walk: the pointer is checked where it gets its value, p->val needs no check
    expect(text).toContain('for (struct node *p = __dsu_lz_struct_node(head); p; p = __dsu_lz_struct_node(p->next)) s += p->val;');
    // a member of another heap object is checked at its use; a global instance (eager) is not
    expect(text).toContain('s += (*__dsu_lz_struct_node(&(boxes[0]->first))).val + gnode.val;');
    // a pointer that moves by ++ is checked at every use
    expect(text).toContain('s += __dsu_lz_struct_node(a)->val; a++;');
    // parameter used concretely: checked once at entry; whole writes and new objects stamped
    expect(text).toContain('void reset(struct node *p) { __dsu_lz_struct_node(p); __dsu_cc_lazy_memset(0x913e2afe9a2817ccULL, p, 0, sizeof *p);');
    expect(text).toContain('struct node tmp = { .__dsu_tag = __dsu_lz_struct_node_v };');
    expect(text).toContain('struct node lit = { 1, 2, 0 , .__dsu_tag = __dsu_lz_struct_node_v};');
    // functions outside the patch are left alone
    expect(text).toContain('int other(struct node *q) { return q->id; }');
    expect(text).toContain('struct node two[2] = { [0 ... 1] = { .__dsu_tag = __dsu_lz_struct_node_v } };');
    // an element through a pointer, used whole
    expect(text).toContain('struct node second(struct node *v) { return (*__dsu_lz_struct_node(&(v[1]))); }');
    expect(plan.lazyChecks?.['struct node']).toEqual({ checks: 6, stamps: 4 });
    writeFileSync(join(dir, 'lazy.inst.i'), text);
    execFileSync(clang, ['-fsyntax-only', '-Wall', '-Werror', '-x', 'cpp-output', join(dir, 'lazy.inst.i')]);
  }, 60_000);
});
