import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CloudEvent,
  createEvent,
  currentType,
  InProcessBus,
  Topics,
  type UpdateCommandV1,
  type UpdateResultV1,
  type UpdateResultsV2,
} from '@dsu/events';
import { startServices, type RunningServices } from '../pipeline';
import { openInfra } from '../shared/infra';
import {
  addTrustedKey,
  approvalMessage,
  computePatchId,
  loadOrCreateSigningKey,
  type PatchManifest,
  signApproval,
} from '@dsu/patch-format';
import { packDir } from '../shared/tarball';

describe('ApplierAgent', () => {
  let home: string;
  let running: RunningServices;
  let bus: InProcessBus;
  let infra: Awaited<ReturnType<typeof openInfra>>;
  const results: UpdateResultV1[] = [];
  const batches: number[] = []; // results per dsu.update.result event

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'dsu-applier-'));
    infra = await openInfra('test', {
      DSU_HOME: home,
      DSU_HOST_ID: 'host-1',
      DSU_RUN_DIR: join(home, 'run'),
      DSU_HEARTBEAT_MS: '60000',
    });
    bus = infra.bus as InProcessBus;
    running = await startServices(infra, ['applier'], () => undefined);
    await bus.subscribe({
      group: 'probe',
      topics: [Topics.updateResult],
      handler: async (e: CloudEvent) => {
        expect(e.type).toBe(`${Topics.updateResult}.v2`);
        const batch = (e.data as UpdateResultsV2).results;
        batches.push(batch.length);
        results.push(...batch);
      },
    });
  });
  afterAll(async () => {
    await running.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const command = (over: Partial<UpdateCommandV1>): UpdateCommandV1 => ({
    rolloutId: 'r1',
    host: 'host-1',
    program: 'p',
    patchId: 'p1',
    bundleSha256: 'a'.repeat(64),
    fromBuildId: 'b1',
    toBuildId: 'b2',
    signature: 'AAAA',
    keyId: 'unknown',
    pids: [101, 102],
    timeoutMs: 1000,
    ...over,
  });
  const send = (cmd: UpdateCommandV1) =>
    bus.publish(
      Topics.updateCommand,
      createEvent({ type: currentType(Topics.updateCommand), source: 'test', data: cmd }),
      cmd.host,
    );
  const settle = async (n: number) => {
    for (let i = 0; i < 200 && results.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  };

  it('refuses, per process, a command whose signature does not verify, and touches no process', async () => {
    const key = loadOrCreateSigningKey(
      join(home, 'keys', 'checker-ed25519.pem'),
      join(home, 'keys', 'checker-ed25519.pub.pem'),
    );
    const forged = command({
      keyId: key.keyId,
      signature: signApproval(
        key,
        approvalMessage({
          patchId: 'p1',
          bundleSha256: 'a'.repeat(64),
          fromBuildId: 'b1',
          toBuildId: 'OTHER',
        }),
      ),
    });
    await send(forged);
    await settle(2);
    expect(results).toEqual([
      expect.objectContaining({
        pid: 101,
        outcome: 'refused',
        host: 'host-1',
        reasons: [expect.stringMatching(/signature on patch p1 does not verify/)],
      }),
      expect.objectContaining({ pid: 102, outcome: 'refused' }),
    ]);
  });

  it('ignores commands for other hosts, and refuses keys it does not trust', async () => {
    results.length = 0;
    await send(command({ host: 'host-2' }));
    await send(command({ rolloutId: 'r2', pids: [7] }));
    await settle(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(results).toEqual([
      expect.objectContaining({
        rolloutId: 'r2',
        pid: 7,
        outcome: 'refused',
        reasons: [
          expect.stringMatching(
            /signed by key unknown, not by a trusted checker key \(trusted keys: [0-9a-f]{16}; .*dsu keys add/,
          ),
        ],
      }),
    ]);
  });

  it('verifies with any key of the trust store: a rotated-in key added with dsu keys add is accepted', async () => {
    results.length = 0;
    const next = loadOrCreateSigningKey(join(home, 'next', 'k.pem'), join(home, 'next', 'k.pub.pem'));
    const signed = (key: typeof next) =>
      command({
        rolloutId: `r-${key.keyId}`,
        pids: [9],
        keyId: key.keyId,
        signature: signApproval(
          key,
          approvalMessage({
            patchId: 'p1',
            bundleSha256: 'a'.repeat(64),
            fromBuildId: 'b1',
            toBuildId: 'b2',
          }),
        ),
      });
    await send(signed(next));
    await settle(1);
    expect(results[0].reasons).toEqual([
      expect.stringMatching(/signed by key .*, not by a trusted checker key/),
    ]);
    addTrustedKey(join(home, 'keys', 'trusted'), join(home, 'next', 'k.pub.pem'), 'next-checker');
    await send(signed(next));
    await settle(2);
    // past the signature: the (absent) bundle is what stops it now
    expect(results[1]).toMatchObject({ pid: 9, outcome: 'refused' });
    expect(results[1].reasons.join()).not.toMatch(/signature|trusted/);
  });

  it('reports a command to many processes in batches of at most DSU_RESULT_BATCH, each process once', async () => {
    results.length = 0;
    batches.length = 0;
    process.env.DSU_RESULT_BATCH = '100';
    try {
      const pids = Array.from({ length: 250 }, (_, i) => 5000 + i);
      await send(command({ rolloutId: 'r-many', pids }));
      await settle(250);
      expect(results.map((r) => r.pid)).toEqual(pids);
      expect(results.every((r) => r.rolloutId === 'r-many' && r.outcome === 'refused')).toBe(true);
      expect(batches.length).toBeGreaterThan(2);
      expect(Math.max(...batches)).toBeLessThanOrEqual(100); // DSU_RESULT_BATCH: at most that many per event
      expect(batches.reduce((a, b) => a + b, 0)).toBe(250);
    } finally {
      delete process.env.DSU_RESULT_BATCH;
    }
  });

  // A fake process on the control socket of a live pid (this one): it answers like the runtime,
  // refusing a STAGE whose starting build is not the one it runs, and records each request.
  it('stages without asking STATUS first when the heartbeat saw the process on the starting build, and never applies a patch twice', async () => {
    const dir = join(home, 'bundle-src');
    mkdirSync(join(dir, 'models'), { recursive: true });
    writeFileSync(join(dir, 'patch.so'), 'so v2');
    const body: Omit<PatchManifest, 'patchId'> = {
      format: 1,
      program: 'p',
      from: { buildId: 'b1', version: 'v1' },
      to: { buildId: 'b2', version: 'v2' },
      soSha256: createHash('sha256').update('so v2').digest('hex'),
      functions: [],
      types: [],
      globals: [],
      allowedUpdatePoints: ['poll'],
    };
    const patchId = computePatchId(body, Buffer.from('so v2'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...body, patchId }));
    const { sha256 } = await infra.store.put(await packDir(dir));
    const key = loadOrCreateSigningKey(
      join(home, 'keys', 'checker-ed25519.pem'),
      join(home, 'keys', 'checker-ed25519.pub.pem'),
    );
    const approval = { patchId, bundleSha256: sha256, fromBuildId: 'b1', toBuildId: 'b2' };

    const pid = process.pid;
    let build = 'b1';
    let carried: string[] = [];
    const connections: string[][] = []; // the requests of each connection
    // the update's connection (the heartbeat's connections ask STATUS only)
    const updates = () => connections.filter((c) => c.some((v) => v !== 'STATUS'));
    mkdirSync(join(home, 'run'), { recursive: true });
    const server: Server = createServer((sock) => {
      const requests: string[] = [];
      connections.push(requests);
      let buf = '';
      sock.on('data', (d) => {
        buf += d;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const verb = buf.slice(0, nl).split(' ')[0];
          buf = buf.slice(nl + 1);
          requests.push(verb);
          const patches = carried.map((id) => ({
            id,
            fromBuildId: 'b1',
            toBuildId: 'b2',
            appliedAtMs: 1,
            pauseUs: 4,
            updatePoint: 'poll',
          }));
          const reply =
            verb === 'STATUS'
              ? {
                  ok: true,
                  protocol: 1,
                  pid,
                  program: 'p',
                  buildId: 'b1',
                  threads: [],
                  updatePoints: [],
                  patches,
                  staged: null,
                }
              : verb === 'STAGE'
                ? build === 'b1'
                  ? { ok: true, staged: patchId, fromBuildId: 'b1', toBuildId: 'b2', functions: 0 }
                  : { ok: false, error: `the patch starts from build b1; this process runs ${build}` }
                : ((build = 'b2'),
                  (carried = [patchId]),
                  {
                    ok: true,
                    outcome: 'applied',
                    pauseUs: 4,
                    updatePoint: 'poll',
                    buildId: 'b2',
                    reasons: [],
                  });
          sock.write(JSON.stringify(reply) + '\n');
        }
      });
    });
    await new Promise<void>((r) => server.listen(join(home, 'run', `${pid}.sock`), r));
    try {
      await running.applier?.heartbeat(); // the inventory: pid on b1
      connections.length = 0;
      results.length = 0;
      const cmd = command({
        rolloutId: 'r-fast',
        pids: [pid],
        patchId,
        bundleSha256: sha256,
        keyId: key.keyId,
        signature: signApproval(key, approvalMessage(approval)),
      });
      await send(cmd);
      await settle(1);
      expect(results).toEqual([
        expect.objectContaining({ pid, outcome: 'applied', pauseUs: 4, buildId: 'b2' }),
      ]);
      expect(updates()).toEqual([['STAGE', 'COMMIT']]);

      // back on b1 and seen there; then updated by someone else before the next command comes:
      // STAGE is refused, STATUS says the patch is carried: reported applied, not applied again
      build = 'b1';
      carried = [];
      await running.applier?.heartbeat();
      build = 'b2';
      carried = [patchId];
      connections.length = 0;
      await send({ ...cmd, rolloutId: 'r-again' });
      await settle(2);
      expect(results[1]).toMatchObject({
        rolloutId: 'r-again',
        outcome: 'applied',
        reasons: ['already applied (not applied again)'],
      });
      expect(updates()).toEqual([['STAGE', 'STATUS']]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
