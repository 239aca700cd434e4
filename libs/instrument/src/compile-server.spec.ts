import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compileClientPath,
  decodeCompileRequest,
  startCompileServer,
  type CompileServer,
} from './compile-server';

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  // Asynchronous on purpose: the server lives in this process.
  return new Promise((res) =>
    execFile(cmd, args, { cwd, env, timeout: 120_000 }, (err, stdout, stderr) =>
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('decodeCompileRequest', () => {
  const encode = (parts: string[]) => Buffer.from('DSUCC1\n' + parts.map((p) => p + '\0').join(''));

  it('decodes cwd, argv and environment', () => {
    const req = decodeCompileRequest(encode(['/src', '2', '-c', 'a.c', '2', 'A=1', 'B=x=y']));
    expect(req).toEqual({ cwd: '/src', argv: ['-c', 'a.c'], env: { A: '1', B: 'x=y' } });
  });

  it('refuses malformed requests with the reason', () => {
    expect(() => decodeCompileRequest(Buffer.from('HELLO\n'))).toThrow(/magic/);
    expect(() => decodeCompileRequest(encode(['/src', '3', '-c']))).toThrow(/ends early/);
    expect(() => decodeCompileRequest(encode(['/src', 'x']))).toThrow(/bad count/);
    expect(() => decodeCompileRequest(Buffer.from('DSUCC1\n/src\0' + '0\0' + '0'))).toThrow(/NUL-terminated/);
  });
});

describe('compile server + dsu-cc-client', () => {
  const client = compileClientPath();
  let dir: string;
  let server: CompileServer;
  beforeAll(async () => {
    if (!client) throw new Error('bin/dsu-cc-client is not built; run `npx nx build instrument`');
    dir = mkdtempSync(join(tmpdir(), 'dsu-cc-server-test-'));
    server = await startCompileServer();
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('instruments a unit through the server and relays the compiler diagnostics', async () => {
    writeFileSync(
      join(dir, 'warn.c'),
      'int unused_param(int x) { int y; return 1; }\nint main(void) { return unused_param(0) - 1; }\n',
    );
    const before = server.served;
    const r = await run(client!, ['-Wall', '-c', 'warn.c', '-o', 'warn.o'], dir, {
      ...process.env,
      DSU_CC_SOCKET: server.socketPath,
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/unused variable 'y'/);
    expect(server.served).toBe(before + 1);
    expect(JSON.parse(readFileSync(join(dir, 'warn.o.dsu.json'), 'utf8')).summary.unit.path).toBe('warn.c');
  });

  it('links through the server and the program runs', async () => {
    const env = { ...process.env, DSU_CC_SOCKET: server.socketPath };
    expect((await run(client!, ['warn.o', '-o', 'warn'], dir, env)).code).toBe(0);
    expect(existsSync(join(dir, 'warn.dsu.json'))).toBe(true);
    expect((await run(join(dir, 'warn'), [], dir, env)).code).toBe(0);
  });

  it("passes a failing compile's exit code and errors through", async () => {
    writeFileSync(join(dir, 'bad.c'), 'int main(void) { return undeclared; }\n');
    const r = await run(client!, ['-c', 'bad.c', '-o', 'bad.o'], dir, {
      ...process.env,
      DSU_CC_SOCKET: server.socketPath,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/undeclared/);
    expect(existsSync(join(dir, 'bad.o'))).toBe(false);
  });

  it('without a server, runs dsu-cc.js instead (same result)', async () => {
    writeFileSync(join(dir, 'solo.c'), 'int main(void) { return 0; }\n');
    const env = { ...process.env, DSU_CC_SOCKET: join(dir, 'nobody-listens.sock') };
    const r = await run(client!, ['-c', 'solo.c', '-o', 'solo.o'], dir, env);
    expect(r.code).toBe(0);
    expect(existsSync(join(dir, 'solo.o.dsu.json'))).toBe(true);
  });
});

describe('dsu-cc --serve', () => {
  it('runs a make build through one server and the program works', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsu-cc-serve-test-'));
    try {
      writeFileSync(join(dir, 'a.c'), 'int twice(int x) { return 2 * x; }\n');
      writeFileSync(
        join(dir, 'main.c'),
        'int twice(int);\nint main(void) { return twice(21) == 42 ? 0 : 1; }\n',
      );
      writeFileSync(
        join(dir, 'Makefile'),
        'prog: a.o main.o\n\t$(CC) -o $@ $^\n%.o: %.c\n\t$(CC) -O2 -c -o $@ $<\n',
      );
      const bin = join(__dirname, '..', 'bin', 'dsu-cc.js');
      const r = await run('node', [bin, '--serve', '--', 'make'], dir, {
        ...process.env,
        DSU_SOURCE_ROOT: dir,
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/dsu-cc-client -O2 -c -o a\.o a\.c/);
      const model = JSON.parse(readFileSync(join(dir, 'prog.dsu.json'), 'utf8'));
      expect(JSON.stringify(model)).toContain('twice');
      expect((await run(join(dir, 'prog'), [], dir, process.env)).code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says how to use it without a command', async () => {
    const r = await run(
      'node',
      [join(__dirname, '..', 'bin', 'dsu-cc.js'), '--serve'],
      tmpdir(),
      process.env,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/usage: dsu-cc --serve/);
  });
});

describe('CMake through dsu-cc', () => {
  it('configures (compiler detection), builds a static library + executable, and models both units', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsu-cc-cmake-test-'));
    try {
      const src = join(dir, 'src');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(src);
      writeFileSync(
        join(src, 'CMakeLists.txt'),
        'cmake_minimum_required(VERSION 3.16)\nproject(hello C)\nadd_library(greet STATIC greet.c)\nadd_executable(hello main.c)\ntarget_link_libraries(hello greet)\n',
      );
      writeFileSync(
        join(src, 'greet.c'),
        '#include <stdio.h>\nstatic const char *who(void) { return "world"; }\nconst char *greet(void) { static char b[32]; snprintf(b, sizeof b, "hello %s", who()); return b; }\n',
      );
      writeFileSync(
        join(src, 'main.c'),
        '#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n',
      );
      const bin = join(__dirname, '..', 'bin', 'dsu-cc.js');
      const b = join(dir, 'b');
      // The client as CMake's compiler: detection runs without a server (it falls back to
      // dsu-cc.js), the build through one (`dsu-cc --serve`).
      const conf = await run(
        'cmake',
        ['-S', src, '-B', b, `-DCMAKE_C_COMPILER=${compileClientPath()}`],
        dir,
        process.env,
      );
      expect(conf.stderr).not.toMatch(/error/i);
      expect(conf.code).toBe(0);
      const r = await run('node', [bin, '--serve', '--', 'cmake', '--build', b], dir, process.env);
      expect(r.code).toBe(0);
      const out = await run(join(b, 'hello'), [], dir, process.env);
      expect(out.stdout).toBe('hello world\n');
      const model = JSON.parse(readFileSync(join(b, 'hello.dsu.json'), 'utf8')) as {
        instrumentation: { units: { path: string }[] };
      };
      const units = model.instrumentation.units.map((u) => u.path.replace(/.*\//, '')).sort();
      expect(units).toEqual(['greet.c', 'main.c']); // the library's unit was found by content
      expect(JSON.stringify(model)).toContain('greet.c::who');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
