import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip, gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { type ArchiveLimits, archiveLimitsFromEnv } from './archive-limits';
import { extractArchive, inspectArchive } from './tarball';

interface Spec {
  path: string;
  type?: string;
  linkpath?: string;
  body?: string;
  size?: number;
}

/** A tar stream built header by header, so the tests can write what `tar czf` never would. */
function tarBytes(entries: Spec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const header = new tar.Header({
      path: e.path,
      type: (e.type ?? 'File') as tar.Header['type'],
      linkpath: e.linkpath,
      size: e.size ?? body.length,
      mode: e.type === 'Directory' ? 0o755 : 0o644,
      mtime: new Date('2020-01-02T03:04:05Z'),
      uid: 0,
      gid: 0,
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}
const tgz = (entries: Spec[]) => gzipSync(tarBytes(entries));
const limits = archiveLimitsFromEnv({});

describe('extractArchive / inspectArchive: the tree rules', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-archive-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('unpacks an ordinary tree, keeps relative links inside it as links and keeps mtimes', async () => {
    const archive = tgz([
      { path: 'app/', type: 'Directory' },
      { path: 'app/include/', type: 'Directory' },
      { path: 'app/include/real.h', body: '#define X 1\n' },
      { path: 'app/config.h', type: 'SymbolicLink', linkpath: 'include/real.h' },
      { path: 'app/up.h', type: 'SymbolicLink', linkpath: '../app/include/real.h' },
      { path: 'app/same.h', type: 'Link', linkpath: 'app/include/real.h' },
      { path: 'app/main.c', body: '#include "config.h"\nint main(void) { return X; }\n' },
    ]);
    expect(await inspectArchive(archive, limits)).toMatchObject({ entries: 7 });
    await extractArchive(archive, join(dir, 'out'), limits);
    const out = join(dir, 'out', 'app');
    expect(readlinkSync(join(out, 'config.h'))).toBe('include/real.h');
    expect(readFileSync(join(out, 'config.h'), 'utf8')).toBe('#define X 1\n');
    expect(readFileSync(join(out, 'up.h'), 'utf8')).toBe('#define X 1\n');
    expect(statSync(join(out, 'same.h')).nlink).toBe(2);
    expect(statSync(join(out, 'main.c')).mtime.toISOString()).toBe('2020-01-02T03:04:05.000Z');
  });

  const refused: [string, Spec[], RegExp][] = [
    [
      'an absolute symbolic link',
      [{ path: 'src/config.h', type: 'SymbolicLink', linkpath: '/etc/passwd' }],
      /^src\/config\.h is a symbolic link to \/etc\/passwd, outside the submitted tree; replace it with the file itself/,
    ],
    [
      'a relative link that climbs out',
      [{ path: 'src/l', type: 'SymbolicLink', linkpath: '../../etc' }],
      /^src\/l is a symbolic link to \.\.\/\.\.\/etc, which leads outside the submitted tree/,
    ],
    [
      'a link that climbs out through another link (judged once all links are known)',
      [
        { path: 't', type: 'SymbolicLink', linkpath: 's/s/..' },
        { path: 's', type: 'SymbolicLink', linkpath: '.' },
      ],
      /^t is a symbolic link to s\/s\/\.\., which leads outside the submitted tree/,
    ],
    [
      'a file written through a symbolic link',
      [
        { path: 'sub/', type: 'Directory' },
        { path: 'link', type: 'SymbolicLink', linkpath: 'sub' },
        { path: 'link/evil.txt', body: 'x' },
      ],
      /^link\/evil\.txt would be written through the symbolic link link \(to sub\); put the file at its real place/,
    ],
    [
      'a hard link to a file outside',
      [{ path: 'pw', type: 'Link', linkpath: '/etc/passwd' }],
      /^pw is a hard link to \/etc\/passwd, outside the submitted tree; replace it with a copy/,
    ],
    [
      'a hard link to nothing earlier in the archive',
      [{ path: 'pw', type: 'Link', linkpath: 'later.c' }],
      /^pw is a hard link to later\.c, which is not a file earlier in the submitted tree/,
    ],
    [
      'a character device',
      [{ path: 'dev/null', type: 'CharacterDevice' }],
      /^dev\/null is a character device; a source tree may hold only/,
    ],
    ['a FIFO', [{ path: 'pipe', type: 'FIFO' }], /^pipe is a named pipe \(FIFO\)/],
    [
      'a path with ..',
      [{ path: '../escape.c', body: 'x' }],
      /^\.\.\/escape\.c points outside the submitted tree/,
    ],
    ['an absolute path', [{ path: '/tmp/abs.c', body: 'x' }], /^\/tmp\/abs\.c has an absolute path/],
  ];

  it.each(refused)('refuses %s in plain words, with nothing left writing', async (_what, entries, reason) => {
    // Many files after the bad entry: extraction must stop there, not keep writing in the background.
    const tail = Array.from({ length: 300 }, (_, i) => ({ path: `more/f${i}.c`, body: `int f${i};\n` }));
    const archive = tgz([...entries, ...tail]);
    const inspected = inspectArchive(archive, limits);
    await expect(inspected).rejects.toThrow(reason);
    await expect(inspected).rejects.not.toThrow(/TAR_/);
    const out = join(dir, 'out');
    await expect(extractArchive(archive, out, limits)).rejects.toThrow(reason);
    const files = readdirSync(out, { recursive: true }).length;
    rmSync(out, { recursive: true }); // throws ENOTEMPTY if anything were still being written
    await new Promise((r) => setTimeout(r, 50));
    expect(() => lstatSync(out)).toThrow(/ENOENT/);
    expect(files).toBeLessThan(10);
  });

  it('refuses damaged and non-gzip input in plain words', async () => {
    const good = tgz([{ path: 'a.c', body: 'int a;\n' }]);
    await expect(inspectArchive(good.subarray(0, good.length - 8), limits)).rejects.toThrow(
      /not a complete gzip file .*send the gzip tar/,
    );
    await expect(inspectArchive(Buffer.from('plain text, not gzip'), limits)).rejects.toThrow(/gzip/);
    await expect(
      inspectArchive(gzipSync(gzipSync(tarBytes([{ path: 'a.c', body: 'x' }]))), limits),
    ).rejects.toThrow(/compressed twice/);
  });
});

describe('archive limits', () => {
  const small: ArchiveLimits = {
    maxEntries: 5,
    maxExpandedBytes: 1 << 20,
    maxRatio: 50,
    ratioGraceBytes: 1 << 20,
  };

  it('refuses too many entries', async () => {
    const archive = tgz(Array.from({ length: 6 }, (_, i) => ({ path: `f${i}.c`, body: 'x' })));
    await expect(inspectArchive(archive, small)).rejects.toMatchObject({
      status: 413,
      message: expect.stringMatching(/more than 5 entries \(DSU_ARCHIVE_MAX_ENTRIES\)/),
    });
  });

  it('refuses an entry whose declared size passes the limit before expanding it', async () => {
    // Header only, no body: refused from the header alone.
    const archive = gzipSync(tarBytes([{ path: 'huge.bin', size: 0 }]).fill(0, 1024));
    const header = Buffer.alloc(512);
    new tar.Header({
      path: 'huge.bin',
      type: 'File',
      size: 3 * 1024 ** 3,
      mode: 0o644,
      mtime: new Date(),
    }).encode(header, 0);
    await expect(inspectArchive(gzipSync(header), small)).rejects.toThrow(
      /huge\.bin \(3072 MiB\) would bring the expanded archive past 1 MiB \(DSU_ARCHIVE_MAX_BYTES\)/,
    );
    expect(archive.length).toBeGreaterThan(0);
  });

  it('refuses a decompression bomb by its ratio after a bounded amount of work', async () => {
    // 3 GiB of zeros in one entry; with a byte limit above it only the ratio can stop it.
    const limits: ArchiveLimits = {
      maxEntries: 10,
      maxExpandedBytes: 8 * 1024 ** 3,
      maxRatio: 200,
      ratioGraceBytes: 16 << 20,
    };
    const t0 = Date.now();
    await expect(inspectArchive(bomb(3 * 1024 ** 3), limits)).rejects.toMatchObject({
      status: 413,
      message: expect.stringMatching(/expands more than 200 times its compressed size .*decompression bomb/),
    });
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

/** A gzip tar of one file of `bytes` zeros, generated as a stream (never held in memory). */
export function bomb(bytes: number): Readable {
  const header = Buffer.alloc(512);
  new tar.Header({ path: 'zeros.bin', type: 'File', size: bytes, mode: 0o644, mtime: new Date() }).encode(
    header,
    0,
  );
  const zeros = Buffer.alloc(1 << 20);
  async function* gen() {
    yield header;
    for (let left = bytes; left > 0; left -= zeros.length)
      yield left >= zeros.length ? zeros : zeros.subarray(0, left);
    yield Buffer.alloc(1024);
  }
  return Readable.from(gen()).pipe(createGzip());
}
