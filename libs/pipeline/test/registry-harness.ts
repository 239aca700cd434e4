// Test support for the registry's specs (not exported from the lib): the gateway service on
// SQLite and the in-process bus, every event recorded, and the setup several specs share.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ALL_TOPICS,
  type CloudEvent,
  createEvent,
  currentType,
  type InProcessBus,
  Topics,
} from '@dsu/events';
import { startServices, type RunningServices } from '../src/pipeline';
import { openInfra } from '../src/shared/infra';
import { packDir } from '../src/shared/tarball';
import type { Registry } from '../src/registry/registry';

/** A sha256-shaped string of one repeated character. */
export const sha = (c: string) => c.repeat(64);

/** Polls `fn` until it gives a value (not undefined or false); fails after about 5 s. */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export interface RegistryHarness {
  home: string;
  running: RunningServices;
  registry: Registry;
  bus: InProcessBus;
  /** Every event published on a topic so far. */
  of: (topic: string) => CloudEvent[];
  publish: (topic: string, data: unknown, key?: string) => Promise<void>;
  /** A source tarball of a one-file program. */
  tarball: () => Promise<Buffer>;
  stop: () => Promise<void>;
}

/** Starts the gateway service under a fresh DSU_HOME and records every event. */
export async function startRegistry(prefix: string, hostId = 'gw'): Promise<RegistryHarness> {
  const home = mkdtempSync(join(tmpdir(), `dsu-${prefix}-`));
  const infra = await openInfra('test', {
    DSU_HOME: home,
    DSU_HOST_ID: hostId,
    DSU_RUN_DIR: join(home, 'run'),
  });
  const bus = infra.bus as InProcessBus;
  const running = await startServices(infra, ['gateway'], () => undefined);
  const events: { topic: string; event: CloudEvent }[] = [];
  await bus.subscribe({
    group: 'probe',
    topics: ALL_TOPICS.filter((t) => t !== Topics.deadLetter),
    handler: async (event, topic) => void events.push({ topic, event }),
  });
  return {
    home,
    running,
    registry: running.registry as Registry,
    bus,
    of: (topic) => events.filter((e) => e.topic === topic).map((e) => e.event),
    // A single process's result (no `results` list) goes out as dsu.update.result.v1, which
    // the registry still records: events written before the batched v2 stay readable.
    publish: (topic, data, key = 'p') => {
      const single = topic === Topics.updateResult && !('results' in (data as object));
      const type = single ? `${topic}.v1` : currentType(topic);
      return bus.publish(topic, createEvent({ type, source: 'test', data }), key);
    },
    tarball: async () => {
      const src = join(home, 'src');
      mkdirSync(src, { recursive: true });
      writeFileSync(join(src, 'main.c'), 'int main(void) { return 0; }\n');
      return packDir(src);
    },
    stop: async () => {
      await running.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * Program `p` with v1 (build b1) and v2 (b2) built, the automatic v1 -> v2 patch requested (and
 * left unanswered), and one process on b1 reported by host h1.
 */
export async function seedTwoVersionsAndAProcess(h: RegistryHarness): Promise<void> {
  await h.registry.registerProgram('p');
  for (const [v, b] of [
    ['v1', 'b1'],
    ['v2', 'b2'],
  ]) {
    await h.registry.submitVersion({ program: 'p', version: v, source: await h.tarball() });
    await h.publish(Topics.buildCompleted, {
      program: 'p',
      version: v,
      buildId: b,
      executable: 'p',
      executableSha256: sha('a'),
      modelSha256: sha('b'),
      buildDirSha256: sha(b === 'b1' ? 'c' : 'd'),
      durationMs: 5,
    });
  }
  await waitFor('the v1->v2 request', () => h.of(Topics.patchRequested).length === 1);
  const proc = { pid: 10, program: 'p', buildId: 'b1', baseBuildId: 'b1', patches: [] };
  await h.publish(Topics.agentHeartbeat, { host: 'h1', runDir: '/r', processes: [proc] }, 'h1');
  await waitFor('the inventory', async () => (await h.registry.listInventory()).length === 1);
}

/**
 * Answers v1 -> v2 patch request `requestId` of program `p` as the patcher and the checker would:
 * patch `patchId` generated (bundle sha('9')), then approved and signed.
 */
export async function approvePatch(h: RegistryHarness, requestId: string, patchId: string): Promise<void> {
  const refs = { from: { version: 'v1', buildId: 'b1' }, to: { version: 'v2', buildId: 'b2' } };
  await h.publish(Topics.patchGenerated, {
    program: 'p',
    requestId,
    patchId,
    bundleSha256: sha('9'),
    ...refs,
    functions: [],
  });
  await h.publish(Topics.patchVerdict, {
    program: 'p',
    patchId,
    bundleSha256: sha('9'),
    ...refs,
    verdict: 'approved',
    findings: [],
    signature: 'c2ln',
    keyId: 'k1',
  });
}
