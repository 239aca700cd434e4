import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyBundle } from '@dsu/control-client';
import { buildVersion } from '@dsu/instrument';
import { buildPatch, DRAFT_MANIFEST, PatchCompileError, rebuildPatch } from './build-patch';

// Patches between versions of C written like real servers (issue 14, dnsmasq and tinyproxy):
// local statics of one name in several functions, arrays sized by their initializer, structs
// with BSD queue entries and enums defined in their members.
const MAKEFILE = 'app: main.o\n\t$(CC) -o app main.o\nmain.o: main.c\n\t$(CC) -O2 -Wall -c main.c -o main.o\n';

const program = (tag: string, extraField = '') => `
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/queue.h>
#include <netinet/in.h>
#define STATE_AFTER IDLE
struct connection {
  int fd;
  LIST_ENTRY(connection) entries;
  enum { IDLE, BUSY } state;${extraField}
};
LIST_HEAD(, connection) conns;
static const char *hexbyte(int v) {
  static const char hex[] = "0123456789abcdef";
  static int calls;
  static char buff[32];
  snprintf(buff, sizeof buff, "%c%c/%d/%d${tag}", hex[(v >> 4) & 15], hex[v & 15], ++calls, (int)sizeof hex);
  return buff;
}
static const char *hexdigit(int v) {
  static const char hex[] = "0123456789ABCDEF";
  static int calls;
  static char buff[32];
  snprintf(buff, sizeof buff, "%c/%d${tag}", hex[v & 15], ++calls);
  return buff;
}
int main(void) {
  struct connection *c = calloc(1, sizeof *c);
  c->state = BUSY;
  LIST_INSERT_HEAD(&conns, c, entries);
  for (;;) {
    char ch;
    if (read(0, &ch, 1) <= 0) return 0;
    printf("%s %s %d\\n", hexbyte(0xab), hexdigit(0xc), (int)LIST_FIRST(&conns)->state);
    fflush(stdout);
  }
}
`;

describe('patches of real-server idioms', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-patch-idioms-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function version(name: string, source: string): Promise<string> {
    const src = join(dir, 'src', name);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'main.c'), source);
    writeFileSync(join(src, 'Makefile'), MAKEFILE);
    await buildVersion(src, join(dir, 'builds', name), { version: name, updatePoints: ['main:loop'] });
    return join(dir, 'builds', name);
  }

  /** Sends one request to the running program and reads its reply line. */
  function ask(p: ChildProcessWithoutNullStreams): Promise<string> {
    return new Promise((res) => {
      let got = '';
      const on = (c: Buffer) => {
        got += c.toString();
        if (got.includes('\n')) {
          p.stdout.off('data', on);
          res(got.trim());
        }
      };
      p.stdout.on('data', on);
      p.stdin.write('x');
    });
  }

  it('patches two functions with their own static hex[] (sizeof too); both keep their state across the update', async () => {
    const v1 = await version('v1', program(''));
    const v2 = await version('v2', program(' v2', '\n  int added;'));
    const { manifest } = await buildPatch(v1, v2, join(dir, 'p12'));
    expect(manifest.functions.map((f) => f.key)).toEqual(expect.arrayContaining(['main.c::hexbyte', 'main.c::hexdigit']));
    expect(manifest.types.map((t) => t.name)).toEqual(['struct connection']);

    const runDir = join(dir, 'run');
    mkdirSync(runDir, { recursive: true });
    const p = spawn(join(v1, 'app'), [], { env: { ...process.env, DSU_RUN_DIR: runDir } });
    try {
      expect(await ask(p)).toBe('ab/1/17 C/1 1');
      expect(await ask(p)).toBe('ab/2/17 C/2 1');
      for (let i = 0; i < 100 && !existsSync(join(runDir, `${p.pid}.sock`)); i++) await new Promise((r) => setTimeout(r, 50));
      let done = false;
      const applying = applyBundle(p.pid as number, join(dir, 'p12'), runDir, 20_000).finally(() => (done = true));
      // The program waits in read(): requests bring it to its update point until the patch is in.
      let n = 2;
      while (!done) {
        await new Promise((r) => setTimeout(r, 200));
        n++;
        expect(await ask(p)).toMatch(new RegExp(`^ab/${n}/17( v2)? C/${n}( v2)? 1$`));
      }
      expect((await applying).outcome).toBe('applied');
      n++;
      expect(await ask(p)).toBe(`ab/${n}/17 v2 C/${n} v2 1`);
    } finally {
      p.kill('SIGKILL');
    }
  }, 240_000);

  it('expands the macros of the program and of libc in patch.yaml code (s6_addr, LIST_FIRST, #define)', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v2 = join(dir, 'builds', 'v2');
    const out = join(dir, 'p12-macros');
    const stateTransformer = [
      'struct in6_addr a; __builtin_memset(&a, 0, sizeof a); a.s6_addr[15] = 1;',
      'if (IN6_IS_ADDR_LOOPBACK(&a)) LIST_FIRST(&conns)->state = STATE_AFTER;',
    ].join('\n');
    const { manifest } = await buildPatch(v1, v2, out, {
      spec: { stateTransformer, types: { 'struct connection': { defaults: { added: 'STATE_AFTER + 7' } } } },
    });
    expect(manifest.notes ?? []).not.toContainEqual(expect.stringMatching(/not macro-expanded/));
    const unit = readFileSync(join(out, 'units', 'main.c.i'), 'utf8');
    expect(unit).not.toMatch(/STATE_AFTER|s6_addr|LIST_FIRST|__dsu_user_code/);
    expect(unit).toMatch(/\(\(&conns\)->lh_first\)->state = IDLE;/);
  }, 120_000);

  it('defines a read-only table that grows anew (static, function-local, external, never written) and replaces its readers', async () => {
    const tables = (extra: string) => `
static const char *const words[] = { "alpha", "beta"${extra} };
const int primes[] = { 2, 3, 5${extra ? ', 7' : ''} };
const char *metric_names[] = { "queries", "hits"${extra ? ', "misses"' : ''} };
const char *metric_name(int i) { return metric_names[i]; }
int count_words(void) { return (int)(sizeof words / sizeof *words); }
int count_primes(void) { return (int)(sizeof primes / sizeof *primes); }
int last_id(int i) { static const unsigned char ids[] = { 1, 2${extra ? ', 3' : ''} }; return ids[i % sizeof ids]; }
int filter_type(int f) {
  static const struct { unsigned short flag; char type[8]; } ftmap[] = { { 1, "bsd" }, { 2, "ere" } };
  unsigned i;
  for (i = 0; i < sizeof(ftmap) / sizeof(ftmap[0]); i++) if (ftmap[i].flag == f) return (int)i;
  return -1${extra ? ' - 0' : ''};
}
int hits(void) { static struct { int n; } counter; return ++counter.n${extra ? ' + 0' : ''}; }
int toggle(void) { static enum { OFF, ON } mode; mode = mode == OFF ? ON : OFF; return mode${extra ? ' + 0' : ''}; }
`;
    const t1 = await version('t1', program('') + tables(''));
    const t2 = await version('t2', program('') + tables(', "gamma"'));
    const { manifest } = await buildPatch(t1, t2, join(dir, 'pt'));
    expect(manifest.globals.filter((g) => g.change === 'type').map((g) => g.key).sort()).toEqual([
      'main.c::last_id::ids',
      'main.c::words',
      'metric_names', // not const, but no function writes it (dnsmasq's metric_names)
      'primes',
    ]);
    const byKey = new Map(manifest.functions.map((f) => [f.key, f.reasons]));
    expect(byKey.get('count_primes')).toEqual(["reads 'primes', a read-only table the patch defines anew"]);
    // A static whose declaration defines a struct (tinyproxy's ftmap[]) is the running program's;
    // one dsu-cc leaves in place (an enum defined in it) is the patch's own copy, noted when writable.
    expect(manifest.notes).toContainEqual(expect.stringMatching(/^'main.c::toggle::mode': the running program keeps this static where it is declared/));
    expect(manifest.notes ?? []).not.toContainEqual(expect.stringMatching(/ftmap|counter/));
    const unit = readFileSync(join(dir, 'pt', 'units', 'main.c.i'), 'utf8');
    expect(unit).toMatch(/const int primes\[\] __asm__\("primes__dsu_v[0-9a-f]+"\) = \{ 2, 3, 5, 7 \};/);
  }, 120_000);

  it('compiles transformers of a struct one unit defines for itself and a new static called above its definition', async () => {
    // dnsmasq: struct iface_param is defined differently in dhcp.c and dhcp6.c (keyed per unit);
    // 2.87 adds static do_dump_packet, declared by a prototype and called before its definition.
    const files = (extra: string) => ({
      'a.c': `struct param { int a; };\nstatic struct param *p;\nint use_a(void) { static struct param one; p = &one; return p->a; }\n`,
      'b.c':
        `struct param { long b; char c;${extra} };\nstatic struct param *q;\nint use_b(void) { static struct param one = { 1, 2 }; q = &one; return (int)q->b; }\n` +
        (extra
          ? 'static int helper(int v);\nint dump(int v) { return helper(v); }\nstatic int helper(int v) { return v + 1; }\n'
          : 'int dump(int v) { return v; }\n'),
      'main.c': 'int use_a(void); int use_b(void); int dump(int);\nint main(void) { return use_a() + use_b() + dump(0) - 1; }\n',
      Makefile: 'app: a.o b.o main.o\n\t$(CC) -o app a.o b.o main.o\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n',
    });
    const build = async (name: string, extra: string) => {
      const src = join(dir, 'src', name);
      mkdirSync(src, { recursive: true });
      for (const [f, text] of Object.entries(files(extra))) writeFileSync(join(src, f), text);
      await buildVersion(src, join(dir, 'builds', name), { version: name });
      return join(dir, 'builds', name);
    };
    const u1 = await build('u1', '');
    const u2 = await build('u2', ' int added;');
    const { manifest } = await buildPatch(u1, u2, join(dir, 'pu'));
    expect(manifest.types.map((t) => t.name)).toEqual(['b.c::struct param']);
    expect(manifest.functions.map((f) => [f.key, f.change])).toEqual(
      expect.arrayContaining([
        ['dump', 'body'],
        ['b.c::helper', 'added'],
      ]),
    );
  }, 120_000);

  it('writes the bundle when the generated code does not compile, so a hand fix and --rebuild finish it', async () => {
    const v1 = join(dir, 'builds', 'v1');
    const v2 = join(dir, 'builds', 'v2');
    const out = join(dir, 'p12-bad');
    const err = await buildPatch(v1, v2, out, { spec: { stateTransformer: 'this_is_not_c;' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PatchCompileError);
    expect((err as Error).message).toMatch(new RegExp(`run \`dsu patch --rebuild ${out}\``));
    expect(existsSync(join(out, DRAFT_MANIFEST))).toBe(true);
    expect(existsSync(join(out, 'manifest.json'))).toBe(false);
    const unit = readdirSync(join(out, 'units')).map((f) => join(out, 'units', f)).find((f) => readFileSync(f, 'utf8').includes('this_is_not_c;'));
    expect(unit).toBeDefined();
    writeFileSync(unit as string, readFileSync(unit as string, 'utf8').replace('this_is_not_c;', ';'));
    const manifest = await rebuildPatch(out);
    expect(manifest.patchId).toMatch(/^[0-9a-f]+$/);
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
    expect(existsSync(join(out, DRAFT_MANIFEST))).toBe(false);
  }, 120_000);
});
