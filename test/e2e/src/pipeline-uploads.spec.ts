// Hostile uploads against `dsu up` (gateway and compiler in one process, the embedded default):
// a 3 MB gzip that expands to 3 GiB is refused within a bounded time while the gateway keeps
// answering other requests and its memory stays low; a tree with a link leaving it is refused at
// submit time with the reason; an ordinary tree with a relative link inside it builds.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir } from './support/fixtures';
import {
  embeddedUp,
  startService,
  stopAllServices,
  waitFor,
  type ServiceProcess,
} from './support/pipeline-services';

jest.setTimeout(300_000);

let work = '';
let gateway = '';
let token = '';
let up: ServiceProcess;
let env: NodeJS.ProcessEnv = {};

/**
 * A gzip tar of 32 chunks of 96 MiB of zeros (3 GiB) as `files` files, ≈3 MB: one compressed
 * chunk repeated as concatenated gzip members (gunzip reads them as one stream), so the test
 * does not spend a minute compressing 3 GiB.
 */
function bombFile(files: number, file: string): void {
  const chunk = 96 * 1024 * 1024;
  const zeros = gzipSync(Buffer.alloc(chunk), { level: 9 });
  const perFile = 32 / files;
  const parts: Buffer[] = [];
  for (let i = 0; i < files; i++) {
    const header = Buffer.alloc(512);
    new tar.Header({
      path: `zeros${i}.c`,
      type: 'File',
      size: perFile * chunk,
      mode: 0o644,
      mtime: new Date(),
    }).encode(header, 0);
    parts.push(gzipSync(header));
    for (let j = 0; j < perFile; j++) parts.push(zeros);
  }
  parts.push(gzipSync(Buffer.alloc(1024)));
  fs.writeFileSync(file, Buffer.concat(parts));
}

/** Kilobytes of a process's resident memory now and at its peak (/proc). */
function rssKb(pid: number): { now: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

const auth = () => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  work = makeTempDir('dsu-e2e-uploads-');
  ({ gateway, env } = await embeddedUp(work, 'uploads'));
  up = await startService('up', env, work, 'up');
  // `dsu up` writes the local admin token as the gateway starts listening.
  const tokenFile = path.join(work, 'home', 'token');
  token = await waitFor(
    'the local admin token',
    async () => fs.existsSync(tokenFile) && fs.readFileSync(tokenFile, 'utf8').trim(),
    60_000,
  );
  const r = await fetch(`${gateway}/programs`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'app' }),
  });
  expect(r.status).toBeLessThan(300);
});
afterAll(async () => {
  await stopAllServices();
  if (work) removeDir(work);
});

describe('uploads to the gateway', () => {
  // One 3 GiB file (refused from its header) and 32 files of 96 MiB (each under the byte limit:
  // refused by the expansion ratio once 16 MiB expanded).
  it.each([
    [
      'one 3 GiB file',
      1,
      /zeros0\.c \(3072 MiB\) would bring the expanded archive past 1024 MiB \(DSU_ARCHIVE_MAX_BYTES\)/,
    ],
    ['32 files of 96 MiB', 32, /expands more than 200 times its compressed size .*decompression bomb/],
  ])(
    'refuses a 3 MB gzip that expands to 3 GiB (%s) quickly, answering other requests meanwhile, with low memory',
    async (what, files, reason) => {
      const file = path.join(work, `bomb-${files}.tgz`);
      bombFile(files, file);
      const compressed = fs.statSync(file).size;
      expect(compressed).toBeLessThan(4 * 1024 * 1024);
      const pid = up.child.pid as number;
      const before = rssKb(pid);

      // Another client polls the gateway the whole time; every answer must come quickly.
      let polling = true;
      const latencies: number[] = [];
      const poller = (async () => {
        while (polling) {
          const t = Date.now();
          const r = await fetch(`${gateway}/programs`, { headers: auth() });
          expect(r.status).toBe(200);
          latencies.push(Date.now() - t);
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      const t0 = Date.now();
      const res = await fetch(`${gateway}/programs/app/versions/bomb-${files}`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/gzip' },
        body: fs.readFileSync(file),
      });
      const refusedMs = Date.now() - t0;
      await new Promise((r) => setTimeout(r, 300)); // a few more polls after the refusal
      polling = false;
      await poller;
      const after = rssKb(pid);
      const body = (await res.json()) as { error: string };

      expect(res.status).toBe(413);
      expect(body.error).toMatch(reason);
      expect(refusedMs).toBeLessThan(3000);
      expect(Math.max(...latencies)).toBeLessThan(500);
      expect(after.peak - before.peak).toBeLessThan(100 * 1024); // < 100 MB more at the peak
      // No version was created.
      expect(
        (await fetch(`${gateway}/programs/app/versions/bomb-${files}`, { headers: auth() })).status,
      ).toBe(404);
      process.stderr.write(
        `[uploads] bomb (${what}) ${compressed} B -> 3 GiB refused in ${refusedMs} ms; ${latencies.length} other requests answered meanwhile, max ${Math.max(...latencies)} ms; gateway RSS ${before.now} -> ${after.now} kB, peak ${before.peak} -> ${after.peak} kB\n`,
      );
    },
  );

  it('refuses a tree with a link leaving it at submit time, in plain words (400)', async () => {
    const src = path.join(work, 'leaky');
    fs.cpSync(fixtureSourceDir('pollserver', 'v1'), src, { recursive: true });
    fs.symlinkSync('/etc/passwd', path.join(src, 'config.h'));
    const r = await dsu(['submit', src, '--program', 'app', '--version', 'leaky'], {
      ...env,
      DSU_GATEWAY: gateway,
      DSU_TOKEN: token,
    });
    expect(r.code).not.toBe(0);
    expect(JSON.stringify(r.json)).toMatch(
      /config\.h is a symbolic link to \/etc\/passwd, outside the submitted tree; replace it with the file itself/,
    );
    expect(JSON.stringify(r.json)).not.toMatch(/TAR_/);
  });

  it('builds an ordinary tree with a relative link inside it', async () => {
    const src = path.join(work, 'linked');
    fs.cpSync(fixtureSourceDir('pollserver', 'v1'), src, { recursive: true });
    const header = fs.readdirSync(src).find((f) => f.endsWith('.h')) as string;
    fs.mkdirSync(path.join(src, 'include'));
    fs.renameSync(path.join(src, header), path.join(src, 'include', header));
    fs.symlinkSync(`include/${header}`, path.join(src, header));
    const r = await dsu(['submit', src, '--program', 'app', '--version', 'linked'], {
      ...env,
      DSU_GATEWAY: gateway,
      DSU_TOKEN: token,
    });
    expect(r).toMatchObject({ code: 0, json: { build: { status: 'built' } } });
  });
});
