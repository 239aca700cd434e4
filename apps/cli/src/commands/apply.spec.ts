import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  computePatchId,
  keyPathsFromEnv,
  loadOrCreateSigningKey,
  signBundleDir,
  type PatchManifest,
} from '@dsu/patch-format';
import { createOutput } from '../output';
import { applyCommand } from './apply';

// `dsu apply` against a fake control socket that records every request: a refused bundle must
// never reach STAGE or COMMIT (the wrong-build check needs STATUS, nothing more).

const PID = 4242;

function writeBundle(dir: string, so: string, verdict: 'approved' | 'rejected' | null): PatchManifest {
  mkdirSync(join(dir, 'models'), { recursive: true });
  writeFileSync(join(dir, 'patch.so'), so);
  writeFileSync(join(dir, 'models', 'from.json'), '{}');
  const body: Omit<PatchManifest, 'patchId'> = {
    format: 1,
    program: 'kv',
    from: { buildId: 'b1', version: 'v1' },
    to: { buildId: 'b2', version: 'v2' },
    soSha256: createHash('sha256').update(so).digest('hex'),
    functions: [{ key: 'handle', change: 'body', newSymbol: '__dsu_impl_handle__v2' }],
    types: [],
    globals: [],
    allowedUpdatePoints: ['serve:loop'],
  };
  const manifest = { ...body, patchId: computePatchId(body, Buffer.from(so)) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  if (verdict)
    writeFileSync(
      join(dir, 'verdict.json'),
      JSON.stringify({
        verdict,
        patchId: manifest.patchId,
        findings:
          verdict === 'rejected' ? [{ rule: 'activeness', severity: 'error', message: 'always active' }] : [],
        updatePoints: { allowed: ['serve:loop'], denied: [] },
      }),
    );
  return manifest;
}

describe('dsu apply: signed bundles only', () => {
  let home: string;
  let runDir: string;
  let server: Server;
  let requests: string[];
  let running = { program: 'kv', buildId: 'b1' };
  /** More fields of the COMMIT reply (e.g. the rebuilt frames). */
  let commitExtra: Record<string, unknown> = {};
  const saved = { home: process.env.DSU_HOME, trusted: process.env.DSU_TRUSTED_KEY };

  beforeEach(async () => {
    home = mkdtempSync(join(tmpdir(), 'dsu-apply-'));
    process.env.DSU_HOME = home;
    delete process.env.DSU_TRUSTED_KEY;
    runDir = join(home, 'run');
    mkdirSync(runDir);
    requests = [];
    running = { program: 'kv', buildId: 'b1' };
    commitExtra = {};
    server = createServer((sock) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const verb = line.split(' ')[0];
          requests.push(verb);
          const reply =
            verb === 'STATUS'
              ? {
                  ok: true,
                  protocol: 1,
                  pid: PID,
                  ...running,
                  threads: [],
                  updatePoints: [],
                  patches: [],
                  staged: null,
                }
              : verb === 'STAGE'
                ? { ok: true, staged: 'x', fromBuildId: 'b1', toBuildId: 'b2', functions: 1 }
                : {
                    ok: true,
                    outcome: 'applied',
                    pauseUs: 7,
                    updatePoint: 'serve:loop',
                    buildId: 'b2',
                    reasons: [],
                    ...commitExtra,
                  };
          sock.write(JSON.stringify(reply) + '\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(join(runDir, `${PID}.sock`), r));
  });
  afterEach(async () => {
    await new Promise((r) => server.close(r));
    rmSync(home, { recursive: true, force: true });
    process.env.DSU_HOME = saved.home;
    if (saved.trusted !== undefined) process.env.DSU_TRUSTED_KEY = saved.trusted;
    jest.restoreAllMocks();
  });

  async function apply(dir: string, allowUnsigned = false) {
    const printed: string[] = [];
    const warned: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void printed.push(l));
    jest
      .spyOn(process.stderr, 'write')
      .mockImplementation((l: string | Uint8Array) => (warned.push(String(l)), true));
    const code = await applyCommand(
      dir,
      { pid: PID, timeoutMs: 1000, runDir, allowUnsigned },
      createOutput(true),
    );
    jest.restoreAllMocks();
    expect(printed).toHaveLength(1);
    return { code, json: JSON.parse(printed[0]), stderr: warned.join('') };
  }
  const sign = async (dir: string) => {
    const paths = keyPathsFromEnv();
    signBundleDir(dir, loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey));
  };

  it('applies a signed, approved bundle for the running build', async () => {
    const dir = join(home, 'b');
    const m = writeBundle(dir, 'so v2', 'approved');
    await sign(dir);
    const r = await apply(dir);
    expect(r).toMatchObject({
      code: 0,
      json: {
        outcome: 'applied',
        pauseUs: 7,
        updatePoint: 'serve:loop',
        reasons: [],
        patchId: m.patchId,
        signature: { verified: true },
      },
    });
    expect(r.json.allowUnsigned).toBeUndefined();
    expect(requests).toEqual(['STATUS', 'STAGE', 'COMMIT']);
  });

  it('passes the rebuilt frames through to --json and prints a line per thread', async () => {
    const dir = join(home, 'b');
    writeBundle(dir, 'so v2', 'approved');
    await sign(dir);
    const frames = [
      {
        tid: 1234,
        done: true,
        frames: ['main@call:serve#0', 'serve@wait:poll#0'],
        waitUs: 30,
        unwindUs: 5,
        rebuildUs: 7,
      },
      { tid: 1235, done: false },
    ];
    commitExtra = { frames };
    expect((await apply(dir)).json.frames).toEqual(frames);
    const printed: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void printed.push(l));
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await applyCommand(dir, { pid: PID, timeoutMs: 1000, runDir }, createOutput(false));
    jest.restoreAllMocks();
    expect(code).toBe(0);
    expect(printed).toContain(
      'thread 1234: rebuilt main@call:serve#0 <- serve@wait:poll#0 in 12 us (after waiting 30 us for it to stop)',
    );
    expect(printed).toContain(
      'thread 1235: frames not rebuilt yet when the runtime replied (it waits up to 1 s)',
    );
  });

  it('refuses unchecked, unsigned, rejected and altered bundles without contacting the process', async () => {
    const dir = join(home, 'b');
    writeBundle(dir, 'so v2', null);
    expect(await apply(dir)).toMatchObject({
      code: 1,
      json: { outcome: 'refused', pauseUs: 0, updatePoint: null, refusal: 'not-checked' },
    });
    writeBundle(dir, 'so v2', 'approved');
    const unsigned = await apply(dir);
    expect(unsigned).toMatchObject({ code: 1, json: { outcome: 'refused', refusal: 'unsigned' } });
    expect(unsigned.json.reasons).toEqual([expect.stringMatching(/not signed.*dsu check/)]);
    await sign(dir);
    writeBundle(dir, 'evil so', 'approved'); // patch.so replaced, soSha256, patchId and verdict recomputed
    expect(await apply(dir)).toMatchObject({
      code: 1,
      json: {
        outcome: 'refused',
        refusal: 'altered',
        reasons: [
          expect.stringMatching(/changed after it was signed \(manifest.json, patch.so, verdict.json\)/),
        ],
      },
    });
    writeBundle(dir, 'so v2', 'rejected');
    expect(await apply(dir, true)).toMatchObject({
      code: 1,
      json: { outcome: 'refused', refusal: 'rejected' },
    });
    expect(requests).toEqual([]);
  });

  it('refuses a bundle for another build or program after STATUS, never staging it', async () => {
    const dir = join(home, 'b');
    writeBundle(dir, 'so v2', 'approved');
    await sign(dir);
    running = { program: 'kv', buildId: 'b0' };
    expect(await apply(dir)).toMatchObject({
      code: 1,
      json: {
        outcome: 'refused',
        refusal: 'wrong-build',
        reasons: [expect.stringMatching(/pid 4242 runs build b0, but patch .* moves build b1/)],
      },
    });
    running = { program: 'other', buildId: 'b1' };
    expect(await apply(dir)).toMatchObject({ code: 1, json: { refusal: 'wrong-program' } });
    expect(requests).toEqual(['STATUS', 'STATUS']);
  });

  it('--allow-unsigned applies an unchecked bundle and says so on stderr and in the JSON', async () => {
    const dir = join(home, 'b');
    writeBundle(dir, 'so v2', null);
    const r = await apply(dir, true);
    expect(r).toMatchObject({
      code: 0,
      json: {
        outcome: 'applied',
        allowUnsigned: true,
        signature: { verified: false, allowUnsigned: true },
        warnings: [expect.stringMatching(/never checked/)],
      },
    });
    expect(r.stderr).toMatch(/WARNING: --allow-unsigned.*local development only/);
    expect(requests).toEqual(['STATUS', 'STAGE', 'COMMIT']);
  });

  it('reports an unreachable process as {"error": {"code", "message"}}', async () => {
    const dir = join(home, 'b');
    writeBundle(dir, 'so v2', 'approved');
    await sign(dir);
    await new Promise((r) => server.close(r));
    rmSync(join(runDir, `${PID}.sock`), { force: true });
    server = createServer();
    const r = await apply(dir);
    expect(r).toMatchObject({
      code: 1,
      json: { error: { code: 'control', message: expect.stringMatching(/no control socket/) } },
    });
  });
});

// Several processes in one invocation: each pid its own fake control socket, with the program it
// runs and the patches it carries.
describe('dsu apply: several processes at once', () => {
  let home: string;
  let runDir: string;
  let servers: Server[];
  /** Requests per pid, in order. */
  let requests: Map<number, string[]>;
  const saved = { home: process.env.DSU_HOME, trusted: process.env.DSU_TRUSTED_KEY };

  const fake = (pid: number, program: string, patches: string[] = []) =>
    new Promise<void>((resolve) => {
      const server = createServer((sock) => {
        let buf = '';
        sock.on('data', (d) => {
          buf += d;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const verb = buf.slice(0, nl).split(' ')[0];
            buf = buf.slice(nl + 1);
            requests.set(pid, [...(requests.get(pid) ?? []), verb]);
            const reply =
              verb === 'STATUS'
                ? {
                    ok: true,
                    protocol: 1,
                    pid,
                    program,
                    buildId: 'b1',
                    threads: [],
                    updatePoints: [],
                    patches: patches.map((id) => ({
                      id,
                      fromBuildId: 'b1',
                      toBuildId: 'b2',
                      appliedAtMs: 1,
                      pauseUs: 3,
                      updatePoint: 'serve:loop',
                    })),
                    staged: null,
                  }
                : verb === 'STAGE'
                  ? { ok: true, staged: 'x', fromBuildId: 'b1', toBuildId: 'b2', functions: 1 }
                  : {
                      ok: true,
                      outcome: 'applied',
                      pauseUs: 7,
                      updatePoint: 'serve:loop',
                      buildId: 'b2',
                      reasons: [],
                    };
            sock.write(JSON.stringify(reply) + '\n');
          }
        });
      });
      servers.push(server);
      server.listen(join(runDir, `${pid}.sock`), resolve);
    });

  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'dsu-apply-many-'));
    process.env.DSU_HOME = home;
    delete process.env.DSU_TRUSTED_KEY;
    runDir = join(home, 'run');
    mkdirSync(runDir);
    servers = [];
    requests = new Map();
  });
  afterEach(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(home, { recursive: true, force: true });
    process.env.DSU_HOME = saved.home;
    if (saved.trusted !== undefined) process.env.DSU_TRUSTED_KEY = saved.trusted;
    jest.restoreAllMocks();
  });

  const signedBundle = () => {
    const dir = join(home, 'b');
    const m = writeBundle(dir, 'so v2', 'approved');
    const paths = keyPathsFromEnv();
    signBundleDir(dir, loadOrCreateSigningKey(paths.signingKey, paths.signingPublicKey));
    return { dir, m };
  };
  async function run(dir: string, opts: Partial<Parameters<typeof applyCommand>[1]>, json = true) {
    const printed: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void printed.push(l));
    jest.spyOn(console, 'error').mockImplementation((l: string) => void printed.push(l));
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await applyCommand(dir, { timeoutMs: 1000, runDir, ...opts }, createOutput(json));
    jest.restoreAllMocks();
    return { code, printed, json: json ? JSON.parse(printed[printed.length - 1]) : undefined };
  }

  it('`dsu apply --pid a,b,c` applies to all three and reports each', async () => {
    for (const pid of [101, 102, 103]) await fake(pid, 'kv');
    const { dir, m } = signedBundle();
    const r = await run(dir, { pid: [101, 102, 103] });
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ patchId: m.patchId, applied: 3, failed: 0, skipped: 0 });
    expect(r.json.results).toEqual(
      [101, 102, 103].map((pid) =>
        expect.objectContaining({
          pid,
          outcome: 'applied',
          pauseUs: 7,
          updatePoint: 'serve:loop',
          buildId: 'b2',
        }),
      ),
    );
    // one connection per process, the bundle verified once for all
    for (const pid of [101, 102, 103]) expect(requests.get(pid)).toEqual(['STATUS', 'STAGE', 'COMMIT']);
  });

  it('reports each pid on its own: one applied, one already patched (skipped), one unreachable (failed)', async () => {
    const { dir, m } = signedBundle();
    await fake(201, 'kv');
    await fake(202, 'kv', [m.patchId]);
    const r = await run(dir, { pid: [201, 202, 203] });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ applied: 1, failed: 1, skipped: 1 });
    expect(r.json.results).toEqual([
      expect.objectContaining({ pid: 201, outcome: 'applied' }),
      expect.objectContaining({ pid: 202, outcome: 'applied', skipped: true }),
      expect.objectContaining({
        pid: 203,
        outcome: 'failed',
        reasons: [expect.stringMatching(/no control socket/)],
      }),
    ]);
    expect(requests.get(202)).toEqual(['STATUS']); // never staged again
    const human = await run(dir, { pid: [201, 202, 203] }, false);
    expect(human.printed).toContainEqual(
      expect.stringMatching(/^1 applied, 1 failed, 1 skipped of 3 process\(es\)/),
    );
  });

  it('--all updates every process of the program in the run directory and leaves the others alone', async () => {
    // --all lists live processes only (sockets of dead pids are removed): real pids, fake sockets
    const sleepers = [0, 1, 2].map(() => spawn('sleep', ['30'], { stdio: 'ignore' }));
    try {
      const [a, b, c] = sleepers.map((s) => s.pid as number);
      await fake(a, 'kv');
      await fake(b, 'other');
      await fake(c, 'kv');
      const { dir } = signedBundle();
      const r = await run(dir, { all: true, program: 'kv', concurrency: 2 });
      expect(r.code).toBe(0);
      expect(r.json.results.map((x: { pid: number }) => x.pid)).toEqual([a, c].sort((x, y) => x - y));
      expect(requests.get(b)).toEqual(['STATUS']);
      const none = await run(dir, { all: true, program: 'nothing' });
      expect(none).toMatchObject({ code: 1, json: { error: { code: 'no-process' } } });
    } finally {
      for (const s of sleepers) s.kill('SIGTERM');
    }
  });

  it('refuses an unsigned bundle for every pid without contacting any', async () => {
    for (const pid of [401, 402]) await fake(pid, 'kv');
    const dir = join(home, 'b');
    writeBundle(dir, 'so v2', 'approved');
    const r = await run(dir, { pid: [401, 402] });
    expect(r).toMatchObject({ code: 1, json: { applied: 0, failed: 2, refusal: 'unsigned' } });
    expect(r.json.results.map((x: { pid: number; outcome: string }) => [x.pid, x.outcome])).toEqual([
      [401, 'refused'],
      [402, 'refused'],
    ]);
    expect(requests.size).toBe(0);
  });
});
