import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildVersion } from '@dsu/instrument';
import { buildPatch, UnsupportedChangeError } from './build-patch';

// Frame maps as `dsu patch` makes them from two real builds of a program whose loop is in main.
const MAKEFILE = 'app: main.o\n\t$(CC) -o app main.o\nmain.o: main.c\n\t$(CC) -O2 -c main.c -o main.o\n';

/** A main loop waiting in poll and handling a request; `extra` goes into the loop after poll. */
const loop = (opts: { locals?: string; extra?: string; before?: string } = {}) => `#include <poll.h>
#include <unistd.h>
int *last_seen;
int handle(int fd, int *count) { char b[8]; ssize_t r; r = read(fd, b, sizeof b); *count += 1; return (int)r; }
int log_line(int n) { return n; }
int main(void) {
  int served = 0;
  int rc;
  ${opts.locals ?? ''}
  struct pollfd p = { 0, POLLIN, 0 };
  ${opts.before ?? ''}
  for (;;) {
    int n;
    n = poll(&p, 1, 100);
    ${opts.extra ?? ''}
    rc = handle(0, &served);
    if (rc < 0) break;
  }
  return served;
}
`;

describe('frame maps (dsu patch)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-frames-patch-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function version(name: string, source: string): Promise<string> {
    const src = join(dir, 'src', name);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'main.c'), source);
    writeFileSync(join(src, 'Makefile'), MAKEFILE);
    await buildVersion(src, join(dir, 'builds', name), { version: name });
    return join(dir, 'builds', name);
  }

  it('maps an active main whose loop changed: sites by correspondence, a new local by its initializer', async () => {
    const v1 = await version('a1', loop());
    const v2 = await version('a2', loop({ locals: 'long idle = 0;', extra: 'if (n == 0) idle++;' }));
    const { manifest } = await buildPatch(v1, v2, join(dir, 'pa'));
    const main = manifest.frames?.find((f) => f.key === 'main');
    expect(main?.sites).toEqual([
      { from: 'wait:poll#0', to: 'wait:poll#0', how: 'same' },
      { from: 'wait:poll#0:again', to: 'wait:poll#0:again', how: 'same' },
      { from: 'call:handle#0', to: 'call:handle#0', how: 'same' },
    ]);
    expect(main?.locals).toContainEqual({ local: 'idle', from: 'initializer' });
    expect(main?.locals).toContainEqual({ local: 'served', from: 'old-local', oldLocal: 'served' });
    const desc = readFileSync(join(dir, 'pa', 'patch.c'), 'utf8');
    expect(desc).toMatch(/const struct dsu_patch_frames dsu_patch_frames = \{ DSU_FRAME_ABI_VERSION, 1u, frame_fns, 0u, NULL \};/);
    expect(readFileSync(join(dir, 'pa', 'units', 'main.c.i'), 'utf8')).toContain('__dsu_cc_frame_resume("main"');
  }, 120_000);

  it('leaves a frame with nowhere to resume unrebuilt, saying what to write; patch.yaml resolves it', async () => {
    const v1 = await version('b1', loop({ extra: 'log_line(n);' }));
    const v2 = await version('b2', loop());
    // log_line never reaches a point: its call is no stop site, nothing to map
    await expect(buildPatch(v1, v2, join(dir, 'pb'))).resolves.toBeDefined();
    // a removed wait is a stop site
    const v3 = await version('b3', loop({ extra: 'usleep(10);' }));
    const unmapped = await buildPatch(v3, v2, join(dir, 'pc'));
    // no map: the patch lists no resume code for main, so the update waits while main is active
    expect(unmapped.manifest.frames ?? []).toEqual([]);
    expect(readFileSync(join(dir, 'pc', 'patch.c'), 'utf8')).not.toContain('__dsu_ff_main__');
    const note = unmapped.manifest.notes?.join('\n') ?? '';
    expect(note).toMatch(/'wait:usleep#0', which the new version does not have/);
    expect(note).toMatch(/frames:\n\s+main:\n\s+resume: \{ "wait:usleep#0": "<a site of the new main: wait:poll#0, call:handle#0>" \}/);
    // patch.yaml that names a site the new code lacks is refused
    const bad = { frames: { main: { resume: { 'wait:usleep#0': 'call:nothing#0' } } } };
    await expect(buildPatch(v3, v2, join(dir, 'pz'), { spec: bad })).rejects.toBeInstanceOf(UnsupportedChangeError);
    const spec = { frames: { main: { resume: { 'wait:usleep#0': 'call:handle#0' } } } };
    const { manifest } = await buildPatch(v3, v2, join(dir, 'pd'), { spec });
    expect(manifest.frames?.[0].sites).toContainEqual({ from: 'wait:usleep#0', to: 'call:handle#0', how: 'override' });
    expect(readFileSync(join(dir, 'pd', 'patch.c'), 'utf8')).toContain(
      '{ DSU_FRAME_MAP_SITE, "main", "wait:usleep#0", "call:handle#0" }',
    );
  }, 120_000);

  it('carries a renamed local through patch.yaml', async () => {
    const v1 = await version('c1', loop());
    const v2 = await version('c2', loop().replace(/served/g, 'requests'));
    // Without patch.yaml the new name is a new local: it starts from its initializer (dsu check shows it)
    const plain = await buildPatch(v1, v2, join(dir, 'pe'));
    expect(plain.manifest.frames?.[0].locals).toContainEqual({ local: 'requests', from: 'initializer' });
    const spec = { frames: { main: { locals: { requests: { from: 'served' } } } } };
    const { manifest } = await buildPatch(v1, v2, join(dir, 'pf'), { spec });
    expect(manifest.frames?.[0].locals).toContainEqual({ local: 'requests', from: 'renamed', oldLocal: 'served' });
    expect(readFileSync(join(dir, 'pf', 'patch.c'), 'utf8')).toContain('{ DSU_FRAME_MAP_LOCAL, "main", "served", "requests" }');
  }, 120_000);

  it('does not rebuild a frame whose local address is kept elsewhere, and says which and where', async () => {
    const v1 = await version('d1', loop({ before: 'last_seen = &served;' }));
    const v2 = await version('d2', loop({ before: 'last_seen = &served;', extra: 'n += 0;' }));
    const { manifest } = await buildPatch(v1, v2, join(dir, 'pg'));
    expect(manifest.frames ?? []).toEqual([]);
    expect(manifest.notes?.join('\n')).toMatch(/'main' cannot be rebuilt .*local 'served' is kept beyond the call it is passed to \(line 11\)/);
    expect(readFileSync(join(dir, 'pg', 'patch.c'), 'utf8')).not.toContain('__dsu_ff_main__');
  }, 120_000);
});
