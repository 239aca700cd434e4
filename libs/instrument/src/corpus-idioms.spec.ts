import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildVersion, slopWarnings } from './build-version';
import { runDsuCc } from './dsu-cc';

// C that real servers (dnsmasq, tinyproxy) are written in and that dsu build refused
// (issue 14): test/fixtures/corpus-idioms has each form in a few lines.
const FIXTURE = resolve(__dirname, '../../../test/fixtures/corpus-idioms');

describe('dsu build on the idioms of real servers', () => {
  let dir: string;
  let model: { types: Record<string, { updatable: boolean; size: number; capacity: number }>; globals: Record<string, unknown> };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-idioms-'));
    await buildVersion(FIXTURE, join(dir, 'b'), { version: 'v1', slop: 'struct connection=64' });
    model = JSON.parse(readFileSync(join(dir, 'b', 'app.dsu.json'), 'utf8'));
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('builds local statics of one name in two functions and two blocks, each keeping its own value', () => {
    // The native program prints the same: hex[] of each function, both counters.
    expect(execFileSync(join(dir, 'b', 'app'), { encoding: 'utf8', env: { ...process.env, DSU_DISABLE: '1' } })).toBe(
      'ab C 16 1 3 1 5 4\n',
    );
    expect(Object.keys(model.globals)).toEqual(
      expect.arrayContaining([
        'main.c::hexbyte::hex',
        'main.c::hexdigit::hex',
        'main.c::hexbyte::buff',
        'main.c::hexdigit::buff',
        'main.c::counts::n',
        'main.c::counts::n.2',
      ]),
    );
    // statics sharing one `static` get exported names too (a patch refers to the running ones)
    const symbols = execFileSync('nm', [join(dir, 'b', 'app')], { encoding: 'utf8' });
    for (const v of ['o', 'ret', 'first', 'calls', 'seen']) expect(symbols).toMatch(new RegExp(`__dsu_s_u[0-9a-f]+__shared_statics__${v}\\b`));
    // and so do those whose declaration defines their type (moved to file scope with them)
    for (const v of ['filesread', 'last', 'count', 'pool']) expect(symbols).toMatch(new RegExp(`__dsu_s_u[0-9a-f]+__files_read__${v}\\b`));
    // one used only in an array dimension too; one whose type the function defines stays local
    expect(symbols).toMatch(/__dsu_s_u[0-9a-f]+__proto_is_11__keys\b/);
    expect(symbols).not.toMatch(/__proto_is_11__http_1_1\b/);
  });

  it('gives room to a struct with #ifdef members, queue entries, enum and struct members defined inline', () => {
    const conn = model.types['struct connection'];
    expect(conn.updatable).toBe(true);
    expect(conn.capacity).toBeGreaterThanOrEqual(conn.size + 64);
  });

  it('adds no warning of its own under -pedantic, -Wmissing-prototypes, -Wdeclaration-after-statement, -Wcast-qual (tinyproxy)', async () => {
    const src = [
      '#include <stdio.h>',
      '#include <unistd.h>',
      'static int helper(int v) { return v + 1; }',
      // const and restrict parameters of a function on the stack at the point (lighttpd base64.c)
      'static int fill(char *const restrict out, const unsigned char *const restrict in, int n) {',
      '  char c;',
      '  if (read(0, &c, 1) <= 0) return -1;',
      '  out[0] = (char)in[0];',
      '  return n + helper(0);',
      '}',
      'int main(void) {',
      '  const char tag[] = "n  =";',
      // frame code restores p from its initializer, which names a renamed local static (lighttpd)
      '  static const int base[] = { 10, 20 };',
      '  const int *p = base + 1;',
      '  int n = 0;',
      '  int (*const next)(int) = helper;', // lighttpd h2.c: a const function pointer local
      '  char buf[4] = "ab";',
      '  char *const restrict out = buf;', // lighttpd base64.c: const beside restrict
      '  if (next(0) != 1) return 1;',
      '  for (;;) { char o[1]; const unsigned char i[1] = { 1 }; int r = fill(o, i, n); if (r < 0) break; n = r; }',
      '  printf("%s %d %d%c\\n", tag, n, *p, out[0]);',
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'quiet.c'), src);
    // -Wlogical-op: a gcc flag configure chose (clang does not know it)
    const flags = ['-std=c99', '-Wall', '-Wextra', '-pedantic', '-Wmissing-prototypes', '-Wdeclaration-after-statement', '-Wcast-qual', '-Wlogical-op', '-O2'];
    let said = '';
    const code = await runDsuCc([...flags, '-o', 'quiet', 'quiet.c'], {
      cwd: dir,
      env: { ...process.env, DSU_UPDATE_POINTS: 'main:loop' },
      log: (l) => (said += l + '\n'),
      output: (_s, c) => (said += c.toString()),
    });
    expect(code).toBe(0);
    expect(said).not.toMatch(/warning:/);
    expect(execFileSync(join(dir, 'quiet'), { input: 'xyz', encoding: 'utf8', env: { ...process.env, DSU_DISABLE: '1' } })).toBe('n  = 3 20a\n');
  }, 60_000);

  it('says loudly when --slop names a type that keeps its C layout or does not exist', () => {
    expect(
      slopWarnings('struct kept=64,struct nope=8,struct fine=16', {
        'struct kept': { key: 'struct kept', updatable: false, notUpdatableReason: 'packed: its C layout must be kept' },
        'struct fine': { key: 'struct fine', updatable: true, size: 8, capacity: 48 },
      }),
    ).toEqual([
      expect.stringMatching(/^--slop 'struct kept=64' is ignored: struct kept keeps its C layout \(packed/),
      expect.stringMatching(/^--slop 'struct nope=8' is ignored: the program defines no type 'struct nope'/),
    ]);
  });
});
