import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blankUnusedPrototypes } from './unused-prototypes';
import { analyzeUnit, buildProgramModel, findClang, type UnitAnalysis } from './index';

const FIXTURE = join(__dirname, '../../../test/fixtures/frontend/multi');
const FLAGS = ['-std=gnu11', '-O2', '-Wall', '-I.', '-DNDEBUG', '-c', '-o', 'x.o', '-MMD', '-MF', 'x.d'];
const clang = findClang().path;

const text = (u: UnitAnalysis, r: { start: number; end: number }) =>
  u.preprocessed.subarray(r.start, r.end).toString();

describe('analyzeUnit + buildProgramModel on a two-file program', () => {
  let a: UnitAnalysis;
  let b: UnitAnalysis;
  beforeAll(async () => {
    [a, b] = await Promise.all([
      analyzeUnit({ source: 'a.c', flags: [...FLAGS, 'a.c'], cwd: FIXTURE, clang }),
      analyzeUnit({ source: join(FIXTURE, 'b.c'), flags: FLAGS, cwd: FIXTURE, clang }),
    ]);
  }, 60000);

  it('keys same-named statics by unit and resolves calls within and across units', () => {
    const m = buildProgramModel('multi', 'build-1', [a, b]);
    expect(Object.keys(m.functions).sort()).toEqual(
      [
        'a.c::helper',
        'a.c::twice',
        'b.c::helper',
        'b.c::worker',
        'b_entry',
        'fact',
        'logmsg',
        'main',
        'next_id',
      ].sort(),
    );
    expect(m.functions['a.c::helper'].isStatic).toBe(true);
    expect(m.functions['a.c::helper'].bodyHash).not.toBe(m.functions['b.c::helper'].bodyHash);
    expect(m.functions.main.calls).toEqual(['a.c::helper', 'b_entry', 'fact', 'logmsg', 'next_id']);
    expect(m.functions.main.externalCalls).toEqual(
      expect.arrayContaining(['memset', 'dsu__update_point', 'dsu__txn_begin', 'dsu__txn_end']),
    );
    expect(m.functions.b_entry.calls).toEqual(['b.c::helper']);
    expect(m.functions.fact.calls).toEqual(['fact']); // recursion
    expect(m.units.map((u) => u.path)).toEqual(['a.c', 'b.c']);
    expect(m.units[0].id).not.toBe(m.units[1].id);
  });

  it('finds address-taken functions (table, pthread_create argument), indirect calls and variadics', () => {
    const m = buildProgramModel('multi', 'build-1', [a, b]);
    expect(m.functions['a.c::helper'].addressTaken).toBe(true);
    expect(m.functions['a.c::twice'].addressTaken).toBe(true);
    expect(m.functions['b.c::worker'].addressTaken).toBe(true);
    expect(m.functions['b.c::helper'].addressTaken).toBe(false);
    expect(m.functions.fact.addressTaken).toBe(false);
    expect(m.functions.main.indirectCalls).toEqual([
      { pointerType: 'handler_fn', canonicalType: 'int (*)(int)' },
    ]);
    expect(m.functions.logmsg.variadic).toBe(true);
    expect(m.functions.logmsg.signature).toBe('int (const char *, ...)');
    expect(m.functions.main.variadic).toBe(false);
    const refs = a.references.filter((r) => r.name === 'helper');
    expect(refs.map((r) => [r.use, r.function, text(a, r.range)])).toEqual([
      ['address', undefined, 'helper'],
      ['call', 'main', 'helper'],
    ]);
  });

  it('models globals: externals, file statics, function-local statics (runtime internals excluded)', () => {
    const m = buildProgramModel('multi', 'build-1', [a, b]);
    expect(m.globals['a.c::counter']).toMatchObject({ linkage: 'internal', type: 'int' });
    expect(m.globals['a.c::next_id::last_id']).toMatchObject({
      linkage: 'function-static',
      function: 'next_id',
    });
    expect(m.globals['shared_total']).toMatchObject({ linkage: 'external', unit: 'a.c' });
    expect(m.globals['b.c::mu'].type).toBe('pthread_mutex_t');
    expect(Object.keys(m.globals).some((k) => k.includes('dsu__'))).toBe(false);
    expect(m.functions.main.globalsWritten).toEqual(['shared_total']);
    expect(m.functions.main.globalsRead).toEqual(['a.c::handlers', 'shared_total']);
    expect(m.functions['a.c::helper'].globalsRead).toEqual(['a.c::counter']);
    expect(m.functions.next_id.globalsWritten).toEqual(['a.c::next_id::last_id']);
    const st = a.statics.find((s) => s.name === 'last_id');
    expect(st && text(a, st.nameRange)).toBe('last_id');
    expect(st && text(a, st.definition)).toBe('static int last_id = 100');
    expect(a.statics.map((s) => s.key).sort()).toEqual([
      'a.c::counter',
      'a.c::handlers',
      'a.c::next_id::last_id',
    ]);
  });

  it('lays out types as the compiler does (checked against offsetof output of the fixture)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfe-layout-'));
    try {
      execFileSync('cc', ['-std=gnu11', '-o', join(dir, 'layout'), 'layout.c'], { cwd: FIXTURE });
      const out = execFileSync(join(dir, 'layout'), { encoding: 'utf8' });
      const m = buildProgramModel('multi', 'build-1', [a, b]);
      let checked = 0;
      for (const line of out.trim().split('\n')) {
        const sz = /^(.+) size (\d+) align (\d+)$/.exec(line);
        const off = /^(.+)\.(\w+) (bit )?(\d+)$/.exec(line);
        if (sz) {
          expect([sz[1], m.types[sz[1]].size, m.types[sz[1]].align]).toEqual([
            sz[1],
            Number(sz[2]),
            Number(sz[3]),
          ]);
        } else if (off) {
          const f = m.types[off[1]].fields.find((x) => x.name === off[2]);
          const bits = off[3] ? Number(off[4]) : Number(off[4]) * 8;
          expect([line, f?.offsetBits]).toEqual([line, bits]);
        } else throw new Error(`unexpected line ${line}`);
        checked++;
      }
      expect(checked).toBe(12);
      expect([a.stats.layoutCompiler, a.stats.layoutMethod, a.stats.layoutFallbackReason]).toEqual([
        'cc',
        'stripped-bodies',
        undefined,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('describes fields, enums, typedefs, packed types; excludes system and runtime-header types', () => {
    const m = buildProgramModel('multi', 'build-1', [a, b]);
    const conn = m.types['struct conn'];
    expect(conn.fields.map((f) => [f.name, f.type, f.sizeBits])).toEqual([
      ['fd', 'int', 32],
      ['origin', 'struct point', 64],
      ['name', 'char[13]', 104],
      ['kind', 'unsigned int', 3],
      ['flags', 'unsigned int', 7],
      ['bytes', 'uint64_t', 64],
      ['u', 'union (unnamed union)', 64],
      ['u.i', 'int', 32],
      ['u.d', 'double', 64],
    ]);
    expect(conn.fields.filter((f) => f.bitfield).map((f) => f.name)).toEqual(['kind', 'flags']);
    expect(conn).toMatchObject({ kind: 'struct', capacity: 48, updatable: true });
    expect(conn.layoutHash).toMatch(/^[0-9a-f]{64}$/);
    expect(m.types['struct wire']).toMatchObject({ updatable: false, packed: true });
    expect(m.types['struct wire'].notUpdatableReason).toMatch(/packed/);
    expect(m.types['enum state'].fields.map((f) => [f.name, f.value])).toEqual([
      ['ST_IDLE', 0],
      ['ST_BUSY', 5],
      ['ST_DONE', 6],
    ]);
    expect(m.types['conn_t']).toMatchObject({ kind: 'typedef', target: 'struct conn', size: 48 });
    expect(m.types['handler_fn']).toMatchObject({ kind: 'typedef', size: 8 });
    expect(m.types['pair_t'].fields.map((f) => f.name)).toEqual(['a', 'b']);
    expect(m.types['struct pollfd']).toBeUndefined();
    expect(m.types['uint64_t']).toBeUndefined();
    expect(m.types['struct dsu_point_site']).toBeUndefined();
    expect(m.warnings).toBeUndefined(); // types.h is in both units with the same layout
    expect(m.functions.main.typesUsed).toEqual(['pair_t', 'struct conn']);
    expect(m.functions.b_entry.typesUsed).toEqual(['struct wire']);
  });

  it('reports update points, transactions, blocking calls and pthread_create with byte ranges', () => {
    const up = a.markers.filter((x) => x.kind === 'update-point');
    expect(up.map((x) => [x.label, x.function, text(a, x.callee), text(a, x.call)])).toEqual([
      ['main_loop', 'main', 'dsu__update_point', 'dsu__update_point("main_loop")'],
    ]);
    expect(up[0].statement && text(a, up[0].statement)).toMatch(
      /^do \{\s*static struct dsu_point_site dsu__site_ = \{ \("main_loop"\), 0 \};[\s\S]*\} while \(0\)$/,
    );
    expect(a.markers.filter((x) => x.kind !== 'update-point').map((x) => [x.kind, x.label])).toEqual([
      ['txn-begin', 'req'],
      ['txn-end', 'req'],
    ]);
    const m = buildProgramModel('multi', 'build-1', [a, b]);
    expect(m.functions.main.updatePoints).toEqual(['main_loop']);
    expect(m.functions.main.transactions).toEqual(['req']);
    expect(b.blockingCalls.map((c) => [c.name, c.function, text(b, c.callee)])).toEqual([
      ['poll', 'b.c::worker', 'poll'],
      ['accept', 'b.c::worker', 'accept'],
      ['read', 'b.c::worker', 'read'],
      ['nanosleep', 'b.c::worker', 'nanosleep'],
      ['pthread_cond_wait', 'b.c::worker', 'pthread_cond_wait'],
    ]);
    expect(text(b, b.blockingCalls[0].call)).toBe('poll(&pfd, 1, 0)');
    expect(b.threadCreates.map((c) => text(b, c.call))).toEqual(['pthread_create(&t, 0, worker, 0)']);
    expect(a.blockingCalls).toEqual([]);
  });

  it('gives definition, body and name ranges of each program function', () => {
    const f = a.functions.find((x) => x.model.name === 'twice');
    expect(f && text(a, f.definition)).toBe('static int twice(int x) { return 2 * x; }');
    expect(f && text(a, f.body)).toBe('{ return 2 * x; }');
    expect(f && text(a, f.name)).toBe('twice');
    for (const fn of [...a.functions, ...b.functions]) {
      expect(text(fn.model.unit === 'a.c' ? a : b, fn.name)).toBe(fn.model.name);
    }
    const site = a.callSites.find((c) => !c.direct);
    expect(site && text(a, site.callee)).toBe('handlers[i]');
    expect(site && text(a, site.call)).toBe('handlers[i](i)');
  });

  it('lists function declarations and variable references for renaming statics', () => {
    expect(
      a.declarations
        .filter((d) => d.name === 'b_entry' || d.name === 'helper')
        .map((d) => [d.key, d.isDefinition, text(a, d.nameRange)]),
    ).toEqual([
      ['b_entry', false, 'b_entry'],
      ['a.c::helper', true, 'helper'],
    ]);
    expect(text(a, a.declarations.find((d) => d.name === 'b_entry')!.range)).toBe('int b_entry(int n)');
    const counterRefs = a.variableReferences.filter((r) => r.key === 'a.c::counter');
    expect(counterRefs.map((r) => [r.function, text(a, r.range)])).toEqual([['a.c::helper', 'counter']]);
    const lastId = a.variableReferences.filter((r) => r.key === 'a.c::next_id::last_id');
    expect(lastId.map((r) => text(a, r.range))).toEqual(['last_id']);
  });

  it('rejects a program that defines the same external function twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfe-dup-'));
    try {
      writeFileSync(
        join(dir, 'c.c'),
        'static int helper(void) { return 1; }\nunsigned long fact(unsigned n) { return n; }\n',
      );
      const c = await analyzeUnit({ source: 'c.c', flags: [], cwd: dir, clang });
      expect(Object.keys(buildProgramModel('p', 'b', [b, c]).functions)).toEqual(
        expect.arrayContaining(['b.c::helper', 'c.c::helper', 'fact']),
      );
      expect(() => buildProgramModel('p', 'b', [a, c, b])).toThrow(
        /function 'fact' is defined in both a\.c and c\.c/,
      );
      expect(() => buildProgramModel('p', 'b', [a, a])).toThrow(/unit a\.c is given twice/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('body hashes, streaming, errors', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cfe-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const analyze = async (
    name: string,
    src: string,
    extra: Partial<Parameters<typeof analyzeUnit>[0]> = {},
  ) => {
    writeFileSync(join(dir, name), src);
    return analyzeUnit({ source: name, flags: ['-std=c11'], cwd: dir, clang, ...extra });
  };
  const hashes = (u: UnitAnalysis) =>
    Object.fromEntries(u.functions.map((f) => [f.model.name, f.model.bodyHash]));

  it('keeps the body hash under reformatting, comments and moves; changes it on a token change', async () => {
    const base = await analyze(
      'h.c',
      'int g;\nint f(int a, int b) { return a + b * 2; }\nint k(void) { return 1; }\n',
    );
    const reformatted = await analyze(
      'h.c',
      '#include <stddef.h>\nint g;\n\n\n/* moved down */\nint k(void)\n{\n  return 1; // one\n}\nint f(int a, int b)\n{\n\treturn a +\n    b * 2; /* two */\n}\n',
    );
    const changed = await analyze(
      'h.c',
      'int g;\nint f(int a, int b) { return a + b * 3; }\nint k(void) { return 1; }\n',
    );
    const renamed = await analyze(
      'h.c',
      'int g;\nint f(int b, int a) { return a + b * 2; }\nint k(void) { return 1; }\n',
    );
    expect(hashes(reformatted)).toEqual(hashes(base));
    expect(hashes(changed).f).not.toBe(hashes(base).f);
    expect(hashes(changed).k).toBe(hashes(base).k);
    expect(hashes(renamed).f).not.toBe(hashes(base).f);
  });

  it('accepts the same C99 inline definition in two units (no external symbol)', async () => {
    const hdr = 'inline int sq(int x) { return x * x; }\n';
    const u1 = await analyze('i1.c', hdr + 'int one(void) { return sq(1); }\n');
    const u2 = await analyze('i2.c', hdr + 'int two(void) { return sq(2); }\n');
    const m = buildProgramModel('p', 'b', [u1, u2]);
    expect(m.functions.sq.isInline).toBe(true);
    expect(m.functions.one.calls).toEqual(['sq']);
    expect(m.functions.two.calls).toEqual(['sq']);
  });

  it('uses byte offsets (multi-byte characters before a function)', async () => {
    const u = await analyze(
      'u.c',
      '/* héllo wörld ✓ */\nconst char *s = "ü✓";\nint ünï(void) { return 1; }\n',
      {
        flags: ['-std=c11'],
      },
    );
    const f = u.functions[0];
    expect(u.preprocessed.subarray(f.name.start, f.name.end).toString()).toBe('ünï');
    expect(u.preprocessed.subarray(f.body.start, f.body.end).toString()).toBe('{ return 1; }');
    expect(u.globals.map((g) => g.key)).toEqual(['s']);
  });

  it('gives the same result on the streaming path as in memory', async () => {
    const [mem, str] = await Promise.all([
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang }),
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang, forceStreaming: true }),
    ]);
    expect(mem.stats.astMode).toBe('memory');
    expect(str.stats.astMode).toBe('stream');
    expect(str.stats.astBytes).toBe(mem.stats.astBytes);
    const strip = (u: UnitAnalysis) => ({ ...u, stats: undefined });
    expect(mem.functions.length).toBeGreaterThan(5);
    expect(strip(str)).toEqual(strip(mem));
    expect(buildProgramModel('p', 'b', [str])).toEqual(buildProgramModel('p', 'b', [mem]));
  });

  it('falls back to clang for layouts when the real compiler fails, with the same layouts', async () => {
    const [cc, fallback] = await Promise.all([
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang }),
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang, layoutCompiler: 'false' }),
    ]);
    expect(fallback.stats.layoutCompiler).toBe(clang);
    expect(fallback.stats.layoutMethod).toBe('clang-i');
    expect(fallback.stats.layoutFallbackReason).toMatch(/layout probe \(false\) failed/);
    expect(fallback.types).toEqual(cc.types);
  });

  it('learns the same layouts, bit-fields included, from one probe of the text (what dsu-cc does)', async () => {
    const [probed, skipped] = await Promise.all([
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang, layoutCompiler: clang }),
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang, skipLayout: true }),
    ]);
    await skipped.probeInstrumented?.(skipped.preprocessed, FIXTURE, new Set());
    expect(skipped.stats.layoutMethod).toBe('instrumented-stripped');
    expect(skipped.types.find((t) => t.key === 'struct conn')?.fields.some((f) => f.bitfield)).toBe(true);
    expect(skipped.types).toEqual(probed.types);
  });

  it('finds bit-fields of unnamed records although the edits move them', async () => {
    const src =
      '#include <stdio.h>\n' +
      'typedef struct { unsigned a : 3, b : 5; int c; } flags_t;\n' +
      'struct named { int x; unsigned f : 1; unsigned g : 7; struct { unsigned h : 2; } in; };\n' +
      'flags_t fl; struct named nm;\n' +
      'int use(void) { return fl.b + nm.g + nm.in.h; }\n';
    const probed = await analyze('bits.c', src, { layoutCompiler: clang });
    const skipped = await analyze('bits.c', src, { skipLayout: true });
    // an edit on the record's line moves its presumed column: clang names it differently
    const at = skipped.preprocessed.indexOf('typedef struct {');
    const moved = Buffer.concat([
      skipped.preprocessed.subarray(0, at),
      Buffer.from('enum { dsu_moved = 1 }; '),
      skipped.preprocessed.subarray(at),
    ]);
    await skipped.probeInstrumented?.(moved, dir, new Set());
    const bits = (u: UnitAnalysis) =>
      u.types.flatMap((t) =>
        t.fields.filter((f) => f.bitfield).map((f) => `${t.key}.${f.name}@${f.offsetBits}`),
      );
    expect(bits(probed)).toEqual([
      'flags_t.a@0',
      'flags_t.b@3',
      'struct named.f@32',
      'struct named.g@33',
      'struct named.in.h@64',
    ]);
    expect(bits(skipped)).toEqual(bits(probed));
    expect(skipped.types).toEqual(probed.types);
  });

  it('places bit-fields after the room of an embedded struct (instrumented layout)', async () => {
    const src =
      'struct inner { long a; };\n' +
      'struct outer { struct inner in; unsigned f : 1; unsigned g : 3; };\n' +
      'struct outer o;\n';
    const u = await analyze('room.c', src, { skipLayout: true });
    const close = u.preprocessed.indexOf('long a; }') + 'long a; '.length;
    const grown = Buffer.concat([
      u.preprocessed.subarray(0, close),
      Buffer.from(' unsigned char __dsu_room[24]; '),
      u.preprocessed.subarray(close),
    ]);
    await u.probeInstrumented?.(grown, dir, new Set(['struct inner']));
    const inner = u.types.find((t) => t.key === 'struct inner');
    const outer = u.types.find((t) => t.key === 'struct outer');
    expect([inner?.size, inner?.capacity]).toEqual([8, 32]);
    expect(outer?.fields.map((f) => `${f.name}@${f.offsetBits}`)).toEqual(['in@0', 'f@256', 'g@257']);
  });

  it('blanks only header prototypes nothing names, keeping every offset', () => {
    const unit = Buffer.from(
      '# 1 "sys.h" 1 3\n' +
        'extern int used (int);\n' +
        'extern int unused (const char *__s) __attribute__ ((__nothrow__));\n' +
        'extern int two (int), more (int);\n' +
        'extern int withinit = 3;\n' +
        'typedef int alias_fn (int);\n' +
        'extern int (*fp) (int);\n' +
        'static inline int inl (int x) { return x; }\n' +
        'extern int after_inline (void);\n' +
        'extern int also_unused\n  (long);\n' +
        '# 2 "prog.c" 2\n' +
        'extern int mine (int);\n' +
        'int f(void) { return used(1); }\n',
    );
    const prog = unit.indexOf('# 2 "prog.c"');
    const { text, declarations } = blankUnusedPrototypes(unit, (o) => o >= prog);
    expect(text.length).toBe(unit.length);
    expect(text.toString().split('\n').length).toBe(unit.toString().split('\n').length);
    const kept = text.toString();
    for (const gone of ['unused', 'also_unused']) expect(kept).not.toMatch(new RegExp(`\\b${gone}\\b`));
    for (const stays of ['used (int)', 'two', 'withinit', 'alias_fn', '(*fp)', 'inl', 'after_inline', 'mine'])
      expect(kept).toContain(stays);
    expect(declarations).toBe(2);
    expect(kept.indexOf('int f(void)')).toBe(unit.indexOf('int f(void)'));
  });

  it('decodes the same unit with unused prototypes blanked as without', async () => {
    const [blanked, whole] = await Promise.all([
      analyzeUnit({ source: 'a.c', flags: FLAGS, cwd: FIXTURE, clang, skipLayout: true }),
      analyzeUnit({
        source: 'a.c',
        flags: FLAGS,
        cwd: FIXTURE,
        clang,
        skipLayout: true,
        keepUnusedPrototypes: true,
      }),
    ]);
    expect(blanked.stats.astBytes).toBeLessThan(whole.stats.astBytes);
    const strip = (u: UnitAnalysis) => ({ ...u, stats: undefined });
    expect(strip(blanked)).toEqual(strip(whole));
  });

  it('switches to streaming by size threshold', async () => {
    const u = await analyze('t.c', '#include <stdio.h>\nint main(void) { puts("{\\"}"); return 0; }\n', {
      streamThresholdBytes: 1000,
    });
    expect(u.stats.astMode).toBe('stream');
    expect(u.functions.map((f) => f.model.name)).toEqual(['main']);
  });

  it('reports a unit that does not compile with clang diagnostics and the unit path', async () => {
    await expect(analyze('bad.c', 'int main(void) { return 0 }\n')).rejects.toThrow(
      /bad\.c[\s\S]*expected ';'/,
    );
    await expect(analyze('missing.c', '#include "nope.h"\n')).rejects.toThrow(/missing\.c[\s\S]*nope\.h/);
  });

  it('explains a missing clang', async () => {
    await expect(analyze('ok.c', 'int x;\n', { clang: 'clang-does-not-exist' })).rejects.toThrow(
      /no usable clang/,
    );
  });
});
