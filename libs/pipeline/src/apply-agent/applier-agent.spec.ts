import { mkdtempSync, rmSync } from 'node:fs';
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
import { addTrustedKey, approvalMessage, loadOrCreateSigningKey, signApproval } from '@dsu/patch-format';

describe('ApplierAgent', () => {
  let home: string;
  let running: RunningServices;
  let bus: InProcessBus;
  const results: UpdateResultV1[] = [];
  const batches: number[] = []; // results per dsu.update.result event

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'dsu-applier-'));
    const infra = await openInfra('test', {
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

  it('reports a command to many processes in batches, each process once', async () => {
    results.length = 0;
    batches.length = 0;
    process.env.DSU_RESULT_BATCH = '100';
    try {
      const pids = Array.from({ length: 250 }, (_, i) => 5000 + i);
      await send(command({ rolloutId: 'r-many', pids }));
      await settle(250);
      expect(results.map((r) => r.pid)).toEqual(pids);
      expect(results.every((r) => r.rolloutId === 'r-many' && r.outcome === 'refused')).toBe(true);
      expect(batches.length).toBeGreaterThan(1);
      expect(batches.reduce((a, b) => a + b, 0)).toBe(250);
    } finally {
      delete process.env.DSU_RESULT_BATCH;
    }
  });
});
