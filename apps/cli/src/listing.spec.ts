import { createServer, type Server } from 'node:http';
import type { Command } from 'commander';
import { describedCommands } from './help';
import { buildProgram } from './program';
import { table } from './table';

/** Runs `dsu <args>` in-process; its exit code and stdout lines. */
async function run(args: string[], env: Record<string, string>) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync(['node', 'dsu', ...args]);
    return { code: process.exitCode ?? 0, stdout: lines };
  } finally {
    process.exitCode = undefined;
    process.env = saved;
    log.mockRestore();
  }
}

describe('listings as tables with a header', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(
      table(
        ['PID', 'PROGRAM', 'BUILD'],
        [
          ['1', 'pollserver', 'abc'],
          ['12345', 'kv', 'def'],
        ],
      ),
    ).toEqual(['PID    PROGRAM     BUILD', '1      pollserver  abc', '12345  kv          def']);
  });

  describe('against a gateway', () => {
    let server: Server;
    let url: string;
    beforeAll(async () => {
      const answers: Record<string, unknown> = {
        '/programs': [{ id: 'app', description: 'a server' }],
        '/programs/app/versions': [
          { version: 'v1', status: 'built' },
          { version: 'v2', status: 'failed' },
        ],
        '/inventory': [
          {
            host: 'h1',
            runDir: '/run',
            seenAt: '2026-12-08T00:00:00.000Z',
            processes: [
              {
                pid: 7,
                program: 'app',
                buildId: 'b2',
                baseBuildId: 'b1',
                patches: ['p'.repeat(64)],
                version: 'v2',
              },
              { pid: 8, program: 'other', buildId: 'b9', baseBuildId: 'b9', patches: [], version: null },
              { pid: 9, program: 'app', buildId: 'b1', baseBuildId: 'b1', patches: [], version: 'v1' },
            ],
          },
        ],
        // app's latest rollout could not update pid 9: the fleet says why.
        '/rollouts?program=app&newest=1': [
          {
            rolloutId: 'r0000002-new',
            program: 'app',
            version: 'v2',
            targets: [{ host: 'h1', pid: 9, state: 'reported', reason: null }],
            results: [
              {
                host: 'h1',
                pid: 9,
                outcome: 'refused',
                reasons: ['pid 9 runs build b1; the patch starts from b0'],
              },
            ],
          },
        ],
      };
      server = createServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'DELETE' && req.url === '/programs/app/versions/v2')
          return void res.end(JSON.stringify({ program: 'app', version: 'v2', deleted: true }));
        res.end(JSON.stringify(answers[req.url ?? ''] ?? []));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(() => new Promise((r) => server.close(r)));

    it('dsu versions: version, status, build and the patch to it', async () => {
      const env = { DSU_GATEWAY: url, DSU_TOKEN: 't' };
      expect((await run(['versions', 'app'], env)).stdout).toEqual([
        'VERSION  STATUS  BUILD  PATCH',
        'v1       built   -      -',
        'v2       failed  -      -',
      ]);
    });

    it('dsu versions delete: DELETE of the version, its answer printed', async () => {
      const env = { DSU_GATEWAY: url, DSU_TOKEN: 't' };
      const r = await run(['versions', 'delete', 'app', 'v2', '--json'], env);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout[0])).toEqual({ program: 'app', version: 'v2', deleted: true });
    });

    it('dsu programs: versions, latest and latest built', async () => {
      const env = { DSU_GATEWAY: url, DSU_TOKEN: 't' };
      expect((await run(['programs'], env)).stdout).toEqual([
        'PROGRAM  VERSIONS  LATEST  LATEST BUILT  DESCRIPTION',
        'app      2         v2      v1            a server',
      ]);
      expect(JSON.parse((await run(['programs', '--json'], env)).stdout[0])).toEqual([
        { id: 'app', description: 'a server', versions: 2, latest: 'v2', latestBuilt: 'v1' },
      ]);
    });

    it('dsu fleet: host, pid, program, version, build and patches; --json without protocol fields', async () => {
      const env = { DSU_GATEWAY: url, DSU_TOKEN: 't' };
      const human = await run(['fleet', '--program', 'app'], env);
      expect(human.stdout).toEqual([
        'HOST  PID  PROGRAM  VERSION  BUILD  STATE    PATCHES',
        `h1    7    app      v2       b2     patched  1: ${'p'.repeat(16)}`,
        'h1    9    app      v1       b1     failed   -',
        'pid 9 on h1: refused: pid 9 runs build b1; the patch starts from b0 (rollout r0000002 to v2)',
        '2 processes: 1 patched, 0 skipped, 1 failed, 0 stale',
      ]);
      // --not-on v2: who still needs it.
      expect((await run(['fleet', '--program', 'app', '--not-on', 'v2'], env)).stdout[1]).toMatch(
        /^h1 +9 +app +v1/,
      );
      const json = JSON.parse((await run(['fleet', '--program', 'app', '--json'], env)).stdout[0]);
      expect(json.summary).toEqual({ patched: 1, skipped: 0, failed: 1, stale: 0 });
      expect(json.processes[0]).toEqual({
        host: 'h1',
        pid: 7,
        program: 'app',
        version: 'v2',
        buildId: 'b2',
        patches: [{ id: 'p'.repeat(64) }],
        state: 'patched',
      });
      expect(json.processes[1]).toMatchObject({
        pid: 9,
        state: 'failed',
        reason: expect.stringMatching(/^refused: /),
      });
      const all = JSON.parse((await run(['fleet', '--json'], env)).stdout[0]);
      expect(all.processes.find((p: { pid: number }) => p.pid === 8)).toMatchObject({
        program: 'other',
        state: 'skipped',
      });
      expect(all.hosts).toEqual([{ host: 'h1', seenAt: '2026-12-08T00:00:00.000Z' }]);
    });
  });
});

describe('--help of every command', () => {
  const all = (c: Command): Command[] => c.commands.flatMap((s) => [s, ...all(s)]);
  const path = (c: Command): string => (c.parent?.parent ? `${path(c.parent)} ${c.name()}` : c.name());
  const commands = all(buildProgram()).filter((c) => c.name() !== 'token'); // a group, no action

  it.each(commands.map((c) => [path(c), c]))('%s has examples and its environment', (_name, c) => {
    const help = (c as Command).helpInformation() + helpAfter(c as Command);
    expect(help).toMatch(/\nExamples:\n {2}\$ dsu /);
    expect(help).toMatch(/\nEnvironment:\n {2}[A-Z_]+/);
    // every argument is described
    for (const a of (c as Command).registeredArguments) expect(a.description).not.toBe('');
  });

  it('marks required options and names the variables remote commands read', () => {
    const submit = commands.find((c) => path(c) === 'submit') as Command;
    expect(submit.helpInformation()).toMatch(/--program <id> .*\(required\)/);
    expect(helpAfter(submit)).toMatch(/DSU_GATEWAY .*\n.*DSU_TOKEN/);
    expect(helpAfter(submit)).toMatch(/DSU_WAIT_TIMEOUT_MS/);
    expect(helpAfter(commands.find((c) => path(c) === 'up') as Command)).toMatch(/DSU_BIND/);
    expect(describedCommands()).toEqual(expect.arrayContaining(commands.map(path)));
  });
});

/** The text commander prints after a command's help (addHelpText 'after'). */
function helpAfter(c: Command): string {
  let text = '';
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((text += String(s)), true));
  try {
    c.outputHelp();
  } finally {
    write.mockRestore();
  }
  return text;
}
