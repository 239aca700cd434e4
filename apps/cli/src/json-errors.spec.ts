import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import { reportError } from './fail-with';
import { createOutput } from './output';
import { buildProgram } from './program';

/** Runs `dsu <args>` in-process; returns its exit code and what it printed on stdout. */
async function run(args: string[], env: Record<string, string> = {}) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
  const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  process.exitCode = undefined;
  try {
    const program = buildProgram();
    program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    await program.parseAsync(['node', 'dsu', ...args]).catch((e: unknown) => {
      // what main.ts does with a usage error
      process.exitCode = reportError(createOutput(args.includes('--json')), e);
    });
    return { code: process.exitCode ?? 0, stdout: lines };
  } finally {
    process.exitCode = undefined;
    process.env = saved;
    log.mockRestore();
    err.mockRestore();
    write.mockRestore();
  }
}

const errorOf = (r: { stdout: string[] }) => {
  expect(r.stdout).toHaveLength(1);
  return JSON.parse(r.stdout[0]).error as { code: string; message: string };
};

/** A stand-in gateway: each request is answered by `route`, and recorded. */
async function fakeGateway(route: (req: IncomingMessage, res: ServerResponse) => void) {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    res.setHeader('content-type', 'application/json');
    route(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, seen, close: () => new Promise((r) => server.close(r)) };
}

describe('--json failures: one {"error": {"code", "message"}} object on stdout, local and remote', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-cli-errors-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a local command whose process is not there', async () => {
    const r = await run(['status', '--pid', '999999', '--run-dir', dir, '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r)).toEqual({ code: 'control', message: expect.stringMatching(/no control socket/) });
  });

  it('a usage error commander finds before any action runs', async () => {
    const r = await run(['status', '--json']);
    expect(r.code).toBe(1);
    expect(errorOf(r)).toEqual({ code: 'usage', message: expect.stringMatching(/--pid/) });
    expect(await run(['rollout', 'app', '--json'])).toMatchObject({ code: 1 });
    expect(errorOf(await run(['rollout', 'app', '--json']))).toMatchObject({ code: 'usage' });
  });

  it('an unreachable gateway', async () => {
    const r = await run(['versions', 'app', '--json'], { DSU_GATEWAY: 'http://127.0.0.1:9' });
    expect(r.code).toBe(1);
    expect(errorOf(r)).toEqual({ code: 'gateway-unreachable', message: expect.stringMatching(/dsu up/) });
  });

  it("the gateway's refusal, with the registry's code", async () => {
    const gw = await fakeGateway((req, res) => {
      res.statusCode = 404;
      if (req.url?.startsWith('/rollouts')) res.end(JSON.stringify({ error: 'gone' }));
      else
        res.end(JSON.stringify({ error: "program 'nosuch' is not registered", code: 'program-not-found' }));
    });
    try {
      const r = await run(['versions', 'nosuch', '--json'], { DSU_GATEWAY: gw.url, DSU_TOKEN: 't' });
      expect(r.code).toBe(1);
      expect(errorOf(r)).toEqual({ code: 'program-not-found', message: expect.stringMatching(/HTTP 404/) });
      // without a code of its own, the status names it
      const r2 = await run(['rollouts', '--json'], { DSU_GATEWAY: gw.url, DSU_TOKEN: 't' });
      expect(errorOf(r2).code).toBe('not-found');
    } finally {
      await gw.close();
    }
  });

  it('a usage error without --json prints nothing on stdout', async () => {
    const r = await run(['status']);
    expect(r).toEqual({ code: 1, stdout: [] });
  });

  it('reportError keeps the exit code of a commander error', () => {
    const lines: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    try {
      expect(reportError(createOutput(true), new CommanderError(1, 'commander.x', 'error: bad'))).toBe(1);
      expect(JSON.parse(lines[0])).toEqual({ error: { code: 'usage', message: 'bad' } });
    } finally {
      log.mockRestore();
    }
  });
});

describe('input checked where it is typed', () => {
  it('dsu submit refuses a malformed --update-point before it uploads anything', async () => {
    const gw = await fakeGateway((_req, res) => res.end('{}'));
    const src = mkdtempSync(join(tmpdir(), 'dsu-cli-src-'));
    try {
      mkdirSync(join(src, 'a'));
      writeFileSync(join(src, 'a', 'main.c'), 'int main(void){return 0;}\n');
      const args = [
        'submit',
        src,
        '--program',
        'app',
        '--version',
        'v1',
        '--update-point',
        'serve',
        '--json',
      ];
      const r = await run(args, { DSU_GATEWAY: gw.url, DSU_TOKEN: 't' });
      expect(r.code).toBe(1);
      expect(errorOf(r)).toEqual({
        code: 'invalid-update-point',
        message: expect.stringMatching(/'serve' must look like FUNCTION:entry or FUNCTION:loop/),
      });
      expect(gw.seen).toEqual([]);
    } finally {
      await gw.close();
      rmSync(src, { recursive: true, force: true });
    }
  });

  describe('a rollout with nothing to update', () => {
    const rollout = { rolloutId: 'r1', program: 'app', version: 'v2', status: 'completed', notes: [] };
    const empty = { ...rollout, patchId: null, patchIds: [], targets: [], results: [] };
    let processes: { pid: number; program: string; version: string }[] = [];
    let gw: Awaited<ReturnType<typeof fakeGateway>>;
    beforeAll(async () => {
      gw = await fakeGateway((req, res) => {
        if (req.method === 'POST' && req.url === '/rollouts') res.end(JSON.stringify({ rolloutId: 'r1' }));
        else if (req.url === '/rollouts/r1') res.end(JSON.stringify(empty));
        else if (req.url === '/inventory')
          res.end(JSON.stringify([{ host: 'h', runDir: '/r', seenAt: '', processes }]));
        else res.writeHead(404).end('{}');
      });
    });
    afterAll(() => gw.close());
    const env = () => ({ DSU_GATEWAY: gw.url, DSU_TOKEN: 't' });

    it('says that no process of the program runs, and exits non-zero', async () => {
      processes = [{ pid: 1, program: 'other', version: 'v1' }];
      const r = await run(['rollout', 'app', '--to', 'v2', '--json'], env());
      expect(r.code).toBe(1);
      expect(errorOf(r)).toEqual({
        code: 'nothing-to-update',
        message: expect.stringMatching(/no applier reports a running process of 'app'.*--allow-empty/),
      });
    });

    it('says that every process already runs the target', async () => {
      processes = [{ pid: 1, program: 'app', version: 'v2' }];
      const r = await run(['rollout', 'app', '--to', 'v2', '--json'], env());
      expect(errorOf(r).message).toMatch(/all 1 process\(es\) of 'app' already run v2/);
    });

    it('is accepted with --allow-empty', async () => {
      const r = await run(['rollout', 'app', '--to', 'v2', '--allow-empty', '--json'], env());
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout[0])).toMatchObject({ rolloutId: 'r1', status: 'completed', results: [] });
    });
  });
});
