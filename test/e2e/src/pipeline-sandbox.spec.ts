// The compiler service builds submitted code in the sandbox (its default, DSU_BUILD_SANDBOX=
// required), on the embedded default (`dsu up`): a Makefile or a source file that reaches for
// /etc/shadow, for $DSU_HOME's keys or for the network fails the build with the reason in the
// diagnostics; a write to /tmp lands nowhere; the sample program still builds.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir } from './support/fixtures';
import {
  DSU_JS,
  embeddedUp,
  getJson,
  startService,
  stopAllServices,
  waitFor,
} from './support/pipeline-services';

jest.setTimeout(300_000);

let work = '';
let env: NodeJS.ProcessEnv = {};
let token = '';
let gateway = '';
let secret = '';

beforeAll(async () => {
  work = makeTempDir('dsu-e2e-sandbox-');
  const up = await embeddedUp(work, 'sandbox');
  ({ gateway, env } = up);
  const home = up.home;
  await startService('up', env, work, 'up');
  const tokenFile = path.join(home, 'token');
  token = await waitFor(
    'the local admin token',
    async () => fs.existsSync(tokenFile) && fs.readFileSync(tokenFile, 'utf8').trim(),
  );
  fs.mkdirSync(path.join(home, 'keys'), { recursive: true });
  secret = path.join(home, 'keys', 'signing.key');
  fs.writeFileSync(secret, 'SECRET-KEY-MATERIAL\n', { mode: 0o644 });
});
afterAll(async () => {
  await stopAllServices();
  if (work) removeDir(work);
});

let n = 0;
/** pollserver v1 with `before` run first by its Makefile (and `extra` appended to main.c). */
function variant(before: string[], extra = ''): string {
  const dir = path.join(work, `src-${++n}`);
  fs.cpSync(fixtureSourceDir('pollserver', 'v1'), dir, { recursive: true });
  const mk = path.join(dir, 'Makefile');
  const text = fs.readFileSync(mk, 'utf8');
  const first = /^([A-Za-z0-9_.-]+):[^\n]*\n/m.exec(text) as RegExpExecArray;
  const at = first.index + first[0].length;
  fs.writeFileSync(mk, text.slice(0, at) + before.map((l) => `\t${l}\n`).join('') + text.slice(at));
  if (extra) fs.appendFileSync(path.join(dir, 'main.c'), extra);
  return dir;
}

async function submit(src: string, version: string) {
  const r = await dsu(
    ['submit', src, '--program', 'app', '--version', version, '--update-point', 'serve:loop'],
    {
      ...env,
      DSU_GATEWAY: gateway,
      DSU_TOKEN: token,
    },
  );
  const v = await getJson<{ status: string; error: string | null; diagnostics: string | null }>(
    `${gateway}/programs/app/versions/${version}`,
    token,
  );
  return { cli: r, ...v, all: `${v.error ?? ''}\n${v.diagnostics ?? ''}` };
}

describe('the compiler service builds in the sandbox', () => {
  it('builds the sample program (and measures the build)', async () => {
    const t0 = Date.now();
    const v = await submit(fixtureSourceDir('pollserver', 'v1'), 'v1');
    expect(v.status).toBe('built');
    process.stderr.write(
      `[sandbox] pollserver v1 submitted and built in the sandbox in ${Date.now() - t0} ms\n`,
    );
  });

  it('a Makefile reading /etc/shadow fails the build, with the reason in the diagnostics', async () => {
    const v = await submit(variant(['cat /etc/shadow']), 'shadow');
    expect(v.status).toBe('failed');
    expect(v.all).toMatch(/\/etc\/shadow: Permission denied/);
  });

  it('a Makefile reading a key in $DSU_HOME/keys fails: DSU_HOME does not exist in the sandbox', async () => {
    const v = await submit(variant([`cat ${secret}`]), 'keys');
    expect(v.status).toBe('failed');
    expect({ all: v.all }).toMatchObject({
      all: expect.stringMatching(new RegExp(`${secret}: No such file or directory`)),
    });
    expect(v.all).not.toMatch(/SECRET-KEY-MATERIAL/);
  });

  it('a source file including the key fails without leaking it (clang runs in the sandbox)', async () => {
    const v = await submit(variant([], `\n#include "${secret}"\n`), 'include');
    expect(v.status).toBe('failed');
    expect(v.all).toMatch(/signing\.key' file not found/);
    expect(v.all).not.toMatch(/SECRET-KEY-MATERIAL/);
  });

  it('a Makefile writing to /tmp leaves nothing there; one connecting to a listener here fails', async () => {
    const probe = `/tmp/dsu-sandbox-e2e-${process.pid}`;
    const wrote = await submit(variant([`echo owned > ${probe}`]), 'tmp-write');
    expect(wrote.status).toBe('built');
    expect(fs.existsSync(probe)).toBe(false);

    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const v = await submit(
        variant([`python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 3)"`]),
        'network',
      );
      expect(v.status).toBe('failed');
      expect(v.all).toMatch(/ConnectionRefusedError|Network is unreachable/);
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe('dsu build --sandbox (a user building locally)', () => {
  it('builds as the compiler service does only when asked', async () => {
    const src = variant(['cat /etc/shadow > /dev/null']);
    const sandboxed = spawnSync(
      process.execPath,
      [DSU_JS, 'build', src, '--out', path.join(work, 'local-sandboxed'), '--sandbox'],
      { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 180_000 },
    );
    expect(sandboxed.status).not.toBe(0);
    expect(sandboxed.stderr).toMatch(/in the build sandbox/);
    expect(sandboxed.stderr).toMatch(/cat: \/etc\/shadow: Permission denied/);
    // Unsandboxed, the build runs with the user's rights (root here: it reads /etc/shadow).
    const plain = await dsu(['build', src, '--out', path.join(work, 'local-plain')], env);
    expect(plain).toMatchObject({ code: 0, json: { executable: 'pollserver' } });
  });
});
