// The build sandbox on real builds (bubblewrap; tools/bootstrap installs it): what a hostile
// Makefile or source file can no longer do, and that a normal build and its limits still work.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildVersion, type BuildVersionOptions } from './build-version';
import { probeSandbox, sandboxModeFromEnv } from './build-sandbox';

jest.setTimeout(120_000);

const REPO = resolve(__dirname, '..', '..', '..');
let work: string;
// A stand-in $DSU_HOME under the read-only installation (like `<repo>/.dsu`): only `hide` keeps it out.
let home: string;
let secret: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'dsu-sandbox-spec-'));
  mkdirSync(join(REPO, 'tmp'), { recursive: true });
  home = mkdtempSync(join(REPO, 'tmp', 'sandbox-spec-home-'));
  mkdirSync(join(home, 'keys'));
  secret = join(home, 'keys', 'signing.key');
  writeFileSync(secret, 'SECRET-KEY-MATERIAL\n', { mode: 0o644 });
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

let n = 0;
/** A one-file C program whose Makefile runs `before` first. */
function program(before: string[], main = 'int main(void) { return 0; }\n'): string {
  const dir = join(work, `src-${++n}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'main.c'), main);
  writeFileSync(
    join(dir, 'Makefile'),
    ['app: main.c', ...before.map((l) => `\t${l}`), '\t$(CC) -o app main.c', ''].join('\n'),
  );
  return dir;
}

const sandboxed = (more: Partial<BuildVersionOptions> = {}): BuildVersionOptions => ({
  sandbox: { mode: 'required', hide: [home] },
  timeoutMs: 60_000,
  ...more,
});
const build = (src: string, opts: BuildVersionOptions) => buildVersion(src, join(work, `out-${++n}`), opts);

describe('the build sandbox', () => {
  it('is available here (bubblewrap installed, user namespaces allowed)', async () => {
    expect(await probeSandbox()).toEqual({ ok: true });
  });

  it('builds a normal program, and gives the output back to the caller', async () => {
    const out = join(work, 'normal-out');
    const built = await buildVersion(program([]), out, sandboxed());
    expect(built.executable).toBe('app');
    expect(statSync(join(out, 'app')).uid).toBe(process.getuid?.());
    expect(statSync(join(out, 'src', 'app')).uid).toBe(process.getuid?.());
  });

  it('a Makefile cannot read /etc/shadow', async () => {
    await expect(build(program(['cat /etc/shadow']), sandboxed())).rejects.toThrow(
      /\/etc\/shadow: Permission denied[\s\S]*|Permission denied/,
    );
  });

  it('a Makefile cannot read $DSU_HOME (hidden even under the read-only installation)', async () => {
    const src = program([`cat ${secret}`]);
    const err = await build(src, sandboxed()).catch((e: Error) => e);
    expect(String(err)).toMatch(new RegExp(`${secret}: No such file or directory`));
    expect(String(err)).not.toMatch(/SECRET-KEY-MATERIAL/);
    // The same Makefile unsandboxed reads it: the test above is not vacuous.
    await expect(build(src, { timeoutMs: 60_000 })).resolves.toMatchObject({ executable: 'app' });
  });

  it('a source file cannot #include a key from outside (clang runs inside the sandbox too)', async () => {
    const src = program([], `#include "${secret}"\nint main(void) { return 0; }\n`);
    const lines: string[] = [];
    const err = await build(src, sandboxed({ onOutput: (l) => lines.push(l) })).catch((e: Error) => e);
    expect(String(err)).toMatch(/failed with exit code/);
    expect(lines.join('\n')).toMatch(/signing\.key' file not found|No such file or directory/);
    expect(`${String(err)}\n${lines.join('\n')}`).not.toMatch(/SECRET-KEY-MATERIAL/);
  });

  it('a Makefile writing to /tmp leaves nothing there (a private /tmp), and cannot write the installation', async () => {
    const probe = `/tmp/dsu-sandbox-probe-${process.pid}-${Date.now()}`;
    const repoProbe = join(REPO, 'tmp', `dsu-sandbox-probe-${process.pid}`);
    await build(program([`echo owned > ${probe}`, `touch ${repoProbe} || true`]), sandboxed());
    expect(existsSync(probe)).toBe(false);
    expect(existsSync(repoProbe)).toBe(false);
  });

  it('a Makefile cannot connect to a listener on 127.0.0.1 (no network)', async () => {
    let connections = 0;
    const server: Server = createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const connect = `python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 3)"`;
      await expect(build(program([connect]), sandboxed())).rejects.toThrow(
        /Network is unreachable|Connection refused/,
      );
      // Unsandboxed, the same connect reaches the listener.
      await build(program([connect]), { timeoutMs: 60_000 });
      expect(connections).toBe(1);
    } finally {
      server.close();
    }
  });

  it('still stops a build at its time limit (and everything it started)', async () => {
    const marker = `1000.${process.pid}`;
    const t0 = Date.now();
    await expect(build(program([`sleep ${marker}`]), sandboxed({ timeoutMs: 1500 }))).rejects.toThrow(
      /was stopped because it ran longer than 1500 ms/,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
    await new Promise((r) => setTimeout(r, 500));
    const left = (() => {
      try {
        return execFileSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' });
      } catch {
        return ''; // pgrep exits 1 when nothing matches
      }
    })();
    expect(left).toBe('');
  });

  it('says what to install when it is required and unavailable', async () => {
    expect(await probeSandbox({ PATH: '/nonexistent' })).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /needs bubblewrap, which is not installed: install it \(Debian\/Ubuntu: apt-get install bubblewrap/,
      ),
    });
    expect(sandboxModeFromEnv({ X: 'auto' }, 'X', 'required')).toBe('auto');
    expect(() => sandboxModeFromEnv({ X: 'yes' }, 'X', 'required')).toThrow(
      /X must be 'required', 'auto' or 'off', got 'yes'/,
    );
  });
});
