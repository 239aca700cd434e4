import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { applyBundle, listProcesses, readBundle, withControl } from '@dsu/control-client';
import {
  type AgentHeartbeatV1,
  type CloudEvent,
  createEvent,
  currentType,
  type InventoryProcessV1,
  Topics,
  type UpdateCommandV1,
  type UpdateResultV1,
  validatePayload,
} from '@dsu/events';
import type { Log, Outbox } from '@dsu/outbox';
import { approvalMessage, describeTrust, loadTrustStore, verifyWithTrustStore } from '@dsu/patch-format';
import type { PipelineInfra } from '../shared/infra';
import { unpackTo } from '../shared/tarball';

export const APPLIER = 'applier';

/** The processes on this host whose control sockets are in the run directory, with the build each runs now. */
export async function inventory(runDir: string): Promise<InventoryProcessV1[]> {
  const out: InventoryProcessV1[] = [];
  for (const hello of await listProcesses(runDir)) {
    try {
      const s = await withControl(hello.pid, runDir, (c) => c.status());
      const last = s.patches[s.patches.length - 1];
      out.push({
        pid: s.pid,
        program: s.program,
        buildId: last ? last.toBuildId : s.buildId,
        baseBuildId: s.buildId,
        patches: s.patches.map((p) => p.id),
      });
    } catch {
      // exited or busy between HELLO and STATUS: the next heartbeat sees it again
    }
  }
  return out;
}

/**
 * The applier of one host: heartbeats its inventory, and applies the update commands addressed
 * to its host. A patch the process already carries is reported as applied without applying it
 * again, so a redelivered command (or a restarted applier) never applies a patch twice.
 */
export class ApplierAgent {
  private timer?: NodeJS.Timeout;
  private beating: Promise<void> = Promise.resolve();

  constructor(
    private readonly infra: PipelineInfra,
    private readonly outbox: Outbox,
    private readonly log: Log,
  ) {}

  get host(): string {
    return this.infra.config.hostId;
  }

  /** The consumer name: each host's applier is its own consumer group and dedupes by itself. */
  get consumer(): string {
    return `${APPLIER}.${this.host}`;
  }

  subscription() {
    return {
      group: this.infra.group(this.consumer),
      topics: [Topics.updateCommand],
      validate: validatePayload,
      handler: (e: CloudEvent) => this.handleCommand(e),
    };
  }

  startHeartbeat(): void {
    this.timer = setInterval(() => void this.heartbeat(), this.infra.config.heartbeatMs);
    this.timer.unref();
    void this.heartbeat();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.beating;
  }

  /** Publishes one heartbeat now (also used right after an update, so the inventory is fresh). */
  heartbeat(): Promise<void> {
    this.beating = this.beating.then(async () => {
      try {
        const data: AgentHeartbeatV1 = {
          host: this.host,
          runDir: this.infra.config.runDir,
          processes: await inventory(this.infra.config.runDir),
        };
        await this.infra.bus.publish(
          Topics.agentHeartbeat,
          createEvent({
            type: currentType(Topics.agentHeartbeat),
            source: this.consumer,
            subject: this.host,
            data,
          }),
          this.host,
        );
      } catch (err) {
        this.log('warn', 'heartbeat failed', { host: this.host, error: String(err) });
      }
    });
    return this.beating;
  }

  async handleCommand(event: CloudEvent): Promise<void> {
    const cmd = event.data as UpdateCommandV1;
    if (cmd.host !== this.host) return;
    if (await this.outbox.seen(this.consumer, event)) return;
    const results = await this.execute(cmd);
    await this.outbox.once(this.consumer, event, async (tx) => {
      for (const r of results) tx.emit(Topics.updateResult, cmd.program, r, { causedBy: event });
    });
    void this.heartbeat();
  }

  private async execute(cmd: UpdateCommandV1): Promise<UpdateResultV1[]> {
    const base = { rolloutId: cmd.rolloutId, host: this.host, program: cmd.program, patchId: cmd.patchId };
    const refuseAll = (outcome: 'refused' | 'failed', reason: string) => {
      this.log('warn', 'update command refused', { ...base, reason });
      return cmd.pids.map((pid) => ({
        ...base,
        pid,
        outcome,
        pauseUs: 0,
        updatePoint: null,
        reasons: [reason],
        buildId: null,
      }));
    };
    let dir: string;
    try {
      dir = await this.fetchBundle(cmd);
    } catch (err) {
      return refuseAll('refused', (err as Error).message);
    }
    const results: UpdateResultV1[] = [];
    for (const pid of cmd.pids) results.push(await this.applyTo(pid, dir, cmd));
    return results;
  }

  /**
   * Downloads, verifies (hash, signature, targets) and unpacks the bundle; cached per patch id.
   * The signature verifies when any key of the trust store (DSU_TRUSTED_KEY, else the local
   * checker key, plus `dsu keys add`) verifies it, so keys can be rotated without downtime.
   */
  private async fetchBundle(cmd: UpdateCommandV1): Promise<string> {
    const store = loadTrustStore(this.infra.config.keys);
    const msg = approvalMessage({
      patchId: cmd.patchId,
      bundleSha256: cmd.bundleSha256,
      fromBuildId: cmd.fromBuildId,
      toBuildId: cmd.toBuildId,
    });
    if (!verifyWithTrustStore(store, msg, cmd.signature)) {
      if (!store.keys.some((k) => k.keyId === cmd.keyId))
        throw new Error(
          `the command is signed by key ${cmd.keyId}, not by a trusted checker key (${describeTrust(store)})`,
        );
      throw new Error(
        `the checker's signature on patch ${cmd.patchId} does not verify; refusing to apply it`,
      );
    }
    const dir = join(this.infra.config.home, 'applier', this.host, 'bundles', cmd.patchId);
    if (!existsSync(join(dir, 'manifest.json'))) {
      const bytes = await this.download(cmd.bundleSha256);
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== cmd.bundleSha256)
        throw new Error(`downloaded bundle hashes to ${actual}, not ${cmd.bundleSha256}`);
      await unpackTo(bytes, dir);
    }
    const { manifest } = readBundle(dir);
    if (
      manifest.patchId !== cmd.patchId ||
      manifest.from.buildId !== cmd.fromBuildId ||
      manifest.to.buildId !== cmd.toBuildId
    ) {
      throw new Error(
        `bundle ${manifest.patchId} (${manifest.from.buildId} -> ${manifest.to.buildId}) is not the commanded ${cmd.patchId} (${cmd.fromBuildId} -> ${cmd.toBuildId})`,
      );
    }
    return dir;
  }

  private async download(sha256: string): Promise<Buffer> {
    const url = this.infra.config.gatewayUrl;
    if (!url) return this.infra.store.get(sha256);
    const token = this.infra.config.gatewayToken;
    const res = await fetchWhileUnavailable(`${url.replace(/\/$/, '')}/artifacts/${sha256}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    if (!res.ok)
      throw new Error(
        `downloading artifact ${sha256} from ${url} failed: HTTP ${res.status}${res.status === 401 || res.status === 403 ? ' (give the applier a read token: DSU_ARTIFACTS_TOKEN)' : ''}`,
      );
    return Buffer.from(await res.arrayBuffer());
  }

  private async applyTo(pid: number, dir: string, cmd: UpdateCommandV1): Promise<UpdateResultV1> {
    const base = {
      rolloutId: cmd.rolloutId,
      host: this.host,
      pid,
      program: cmd.program,
      patchId: cmd.patchId,
    };
    const runDir = this.infra.config.runDir;
    try {
      const s = await withControl(pid, runDir, (c) => c.status());
      if (s.program !== cmd.program)
        return {
          ...base,
          outcome: 'refused',
          pauseUs: 0,
          updatePoint: null,
          reasons: [`pid ${pid} runs '${s.program}', not '${cmd.program}'`],
          buildId: s.buildId,
        };
      const done = s.patches.find((p) => p.id === cmd.patchId);
      if (done) {
        return {
          ...base,
          outcome: 'applied',
          pauseUs: done.pauseUs,
          updatePoint: done.updatePoint,
          reasons: ['already applied (not applied again)'],
          buildId: done.toBuildId,
        };
      }
      const last = s.patches[s.patches.length - 1];
      const current = last ? last.toBuildId : s.buildId;
      if (current !== cmd.fromBuildId) {
        return {
          ...base,
          outcome: 'refused',
          pauseUs: 0,
          updatePoint: null,
          reasons: [`pid ${pid} runs build ${current}; the patch starts from ${cmd.fromBuildId}`],
          buildId: current,
        };
      }
      const r = await applyBundle(pid, dir, runDir, cmd.timeoutMs);
      this.log('info', 'update applied', {
        ...base,
        outcome: r.outcome,
        pauseUs: r.pauseUs,
        updatePoint: r.updatePoint,
      });
      return {
        ...base,
        outcome: r.outcome,
        pauseUs: r.pauseUs,
        updatePoint: r.updatePoint,
        reasons: r.reasons,
        buildId: r.buildId ?? (r.outcome === 'applied' ? cmd.toBuildId : current),
      };
    } catch (err) {
      return {
        ...base,
        outcome: 'failed',
        pauseUs: 0,
        updatePoint: null,
        reasons: [(err as Error).message],
        buildId: null,
      };
    }
  }
}

/**
 * `fetch`, retried for up to a minute while the gateway is down or restarting (connection
 * refused, 502/503/504): a gateway restart during a rollout must not fail the processes whose
 * bundle was being downloaded right then. Other answers are returned as they are.
 */
async function fetchWhileUnavailable(url: string, init: RequestInit, giveUpMs = 60_000): Promise<Response> {
  const deadline = Date.now() + giveUpMs;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(url, init);
      if (![502, 503, 504].includes(res.status) || Date.now() >= deadline) return res;
      await res.arrayBuffer().catch(() => undefined);
    } catch (err) {
      if (Date.now() >= deadline) throw new Error(`downloading ${url} failed for a minute: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
  }
}
