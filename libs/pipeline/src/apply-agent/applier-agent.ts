import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  applyOnConnection,
  mapLimit,
  readBundle,
  type Status,
  statusAll,
  withControl,
} from '@dsu/control-client';
import {
  type AgentHeartbeatV1,
  type CloudEvent,
  createEvent,
  currentType,
  type InventoryProcessV1,
  Topics,
  type UpdateCommandV1,
  type UpdateResultV1,
  type UpdateResultsV2,
  validatePayload,
} from '@dsu/events';
import type { Log, Outbox, OutboxTx } from '@dsu/outbox';
import {
  approvalMessage,
  describeTrust,
  loadTrustStore,
  type PatchManifest,
  verifyWithTrustStore,
} from '@dsu/patch-format';
import type { PipelineInfra } from '../shared/infra';
import { unpackTo } from '../shared/tarball';

export const APPLIER = 'applier';

/**
 * How many processes of its host the applier talks to at once (`DSU_APPLY_CONCURRENCY`, default
 * 16): each process stages and commits on its own threads, so the host's processes update side
 * by side; the bound keeps a host of thousands from opening thousands of sockets at once.
 */
export function applyConcurrency(env: NodeJS.ProcessEnv = process.env): number {
  return positiveFromEnv(env, 'DSU_APPLY_CONCURRENCY', 16);
}

/**
 * Results per `dsu.update.result.v2` event while a command is still running (`DSU_RESULT_BATCH`,
 * default 100): the registry records each event in one transaction. Results are also sent at
 * most `RESULT_FLUSH_MS` after they are in, so a few slow processes do not hold the others back.
 */
export function resultBatchSize(env: NodeJS.ProcessEnv = process.env): number {
  return positiveFromEnv(env, 'DSU_RESULT_BATCH', 100);
}
const RESULT_FLUSH_MS = 200;

function positiveFromEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  const v = raw === undefined || raw === '' ? dflt : Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return v;
}

/** The processes on this host whose control sockets are in the run directory, with the build each runs now. */
export async function inventory(
  runDir: string,
  concurrency = applyConcurrency(),
): Promise<InventoryProcessV1[]> {
  return (await statusAll(runDir, concurrency)).map((s) => {
    const last = s.patches[s.patches.length - 1];
    return {
      pid: s.pid,
      program: s.program,
      buildId: last ? last.toBuildId : s.buildId,
      baseBuildId: s.buildId,
      patches: s.patches.map((p) => p.id),
    };
  });
}

/** A bundle fetched, verified and read once per command, shared by all its processes. */
interface VerifiedBundle {
  soPath: string;
  manifest: PatchManifest;
}

/**
 * The applier of one host: heartbeats its inventory, and applies the update commands addressed
 * to its host. A patch the process already carries is reported as applied without applying it
 * again, so a redelivered command (or a restarted applier) never applies a patch twice.
 */
export class ApplierAgent {
  private timer?: NodeJS.Timeout;
  private beating: Promise<void> = Promise.resolve();
  /** Commands being applied now. */
  private applying = 0;
  // Read once, at start: a bad value stops the service with the variable's name, not each command.
  private readonly concurrency = applyConcurrency();
  private readonly batchSize = resultBatchSize();
  /** The processes the last heartbeat saw, by pid. */
  private lastInventory = new Map<number, InventoryProcessV1>();

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
    // Not while a command is being applied: a heartbeat contacts every process of the host (the
    // inventory would be stale mid-update anyway), and one follows each command.
    this.timer = setInterval(
      () => this.applying === 0 && void this.heartbeat(),
      this.infra.config.heartbeatMs,
    );
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
        const processes = await inventory(this.infra.config.runDir, this.concurrency);
        this.lastInventory = new Map(processes.map((p) => [p.pid, p]));
        const data: AgentHeartbeatV1 = { host: this.host, runDir: this.infra.config.runDir, processes };
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

  /**
   * Applies a command to its processes, `applyConcurrency` at a time, and reports their results
   * in batches as they come in. Every batch but the last goes out in its own outbox transaction;
   * the last one goes out with the record that the command was handled. After a crash in
   * between, the redelivered command finds the applied processes carrying the patch (reported
   * again, never applied twice) and the registry ignores results it already has.
   */
  async handleCommand(event: CloudEvent): Promise<void> {
    const cmd = event.data as UpdateCommandV1;
    if (cmd.host !== this.host) return;
    if (await this.outbox.seen(this.consumer, event)) return;
    const batches = new ResultBatches(this.outbox, cmd, event, this.batchSize);
    this.applying++;
    try {
      await this.execute(cmd, (r) => batches.add(r));
      await batches.settle();
      await this.outbox.once(this.consumer, event, async (tx) => batches.emitRest(tx));
    } finally {
      this.applying--;
    }
    void this.heartbeat();
  }

  private async execute(cmd: UpdateCommandV1, report: (r: UpdateResultV1) => void): Promise<void> {
    const base = { rolloutId: cmd.rolloutId, host: this.host, program: cmd.program, patchId: cmd.patchId };
    let bundle: VerifiedBundle;
    try {
      bundle = await this.fetchBundle(cmd);
    } catch (err) {
      const reason = (err as Error).message;
      this.log('warn', 'update command refused', { ...base, reason });
      for (const pid of cmd.pids)
        report({
          ...base,
          pid,
          outcome: 'refused',
          pauseUs: 0,
          updatePoint: null,
          reasons: [reason],
          buildId: null,
        });
      return;
    }
    const t0 = Date.now();
    const concurrency = this.concurrency;
    const results = await mapLimit(cmd.pids, concurrency, async (pid) => {
      const r = await this.applyTo(pid, bundle, cmd);
      report(r);
      return r;
    });
    this.log('info', 'update command applied', {
      ...base,
      processes: results.length,
      applied: results.filter((r) => r.outcome === 'applied').length,
      concurrency,
      ms: Date.now() - t0,
    });
  }

  /**
   * Downloads, verifies (hash, signature, targets) and unpacks the bundle; cached per patch id.
   * The signature verifies when any key of the trust store (DSU_TRUSTED_KEY, else the local
   * checker key, plus `dsu keys add`) verifies it, so keys can be rotated without downtime.
   */
  private async fetchBundle(cmd: UpdateCommandV1): Promise<VerifiedBundle> {
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
    // Read and hashed once per command; the runtime checks the hash again as it stages.
    const { manifest, soPath } = readBundle(dir);
    if (
      manifest.patchId !== cmd.patchId ||
      manifest.from.buildId !== cmd.fromBuildId ||
      manifest.to.buildId !== cmd.toBuildId
    ) {
      throw new Error(
        `bundle ${manifest.patchId} (${manifest.from.buildId} -> ${manifest.to.buildId}) is not the commanded ${cmd.patchId} (${cmd.fromBuildId} -> ${cmd.toBuildId})`,
      );
    }
    return { soPath, manifest };
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

  /**
   * One process, over one connection. When the last heartbeat saw the process on the patch's
   * starting build without the patch, STAGE goes first: the runtime refuses a patch whose
   * starting build is not the one it runs, so STATUS is asked only after a refusal, to say why
   * (already applied, moved on meanwhile). Otherwise STATUS first (program, build, patches). A
   * patch the process already carries is reported applied, never applied again.
   */
  private async applyTo(pid: number, bundle: VerifiedBundle, cmd: UpdateCommandV1): Promise<UpdateResultV1> {
    const base = {
      rolloutId: cmd.rolloutId,
      host: this.host,
      pid,
      program: cmd.program,
      patchId: cmd.patchId,
    };
    const seen = this.lastInventory.get(pid);
    const stageFirst =
      seen !== undefined &&
      seen.program === cmd.program &&
      seen.buildId === cmd.fromBuildId &&
      !seen.patches.includes(cmd.patchId);
    try {
      return await withControl(pid, this.infra.config.runDir, async (c) => {
        if (!stageFirst) {
          const early = notApplicable(await c.status(), cmd, base);
          if (early) return early;
        }
        const r = await applyOnConnection(c, bundle.soPath, bundle.manifest, cmd.timeoutMs);
        if (stageFirst && r.outcome === 'refused') {
          const early = notApplicable(await c.status(), cmd, base);
          if (early) return early;
        }
        this.log('info', 'update applied', {
          ...base,
          outcome: r.outcome,
          pauseUs: r.pauseUs,
          updatePoint: r.updatePoint,
          stageMs: r.stageMs,
        });
        return {
          ...base,
          outcome: r.outcome,
          pauseUs: r.pauseUs,
          updatePoint: r.updatePoint,
          reasons: r.reasons,
          buildId: r.buildId ?? (r.outcome === 'applied' ? cmd.toBuildId : cmd.fromBuildId),
          // A data update says how many instances it transformed (and how long that took).
          ...(typeof r.instances === 'number' ? { instances: r.instances } : {}),
          ...(typeof r.transformUs === 'number' ? { transformUs: r.transformUs } : {}),
        };
      });
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
 * The result for a process the command's patch does not apply to, from its STATUS: another
 * program, the patch already carried (reported applied, not applied again), or another build;
 * undefined when the patch applies.
 */
function notApplicable(
  s: Status,
  cmd: UpdateCommandV1,
  base: Pick<UpdateResultV1, 'rolloutId' | 'host' | 'pid' | 'program' | 'patchId'>,
): UpdateResultV1 | undefined {
  const refused = (reason: string, buildId: string | null): UpdateResultV1 => ({
    ...base,
    outcome: 'refused',
    pauseUs: 0,
    updatePoint: null,
    reasons: [reason],
    buildId,
  });
  if (s.program !== cmd.program)
    return refused(`pid ${s.pid} runs '${s.program}', not '${cmd.program}'`, s.buildId);
  const done = s.patches.find((p) => p.id === cmd.patchId);
  if (done)
    return {
      ...base,
      outcome: 'applied',
      pauseUs: done.pauseUs,
      updatePoint: done.updatePoint,
      reasons: ['already applied (not applied again)'],
      buildId: done.toBuildId,
    };
  const last = s.patches[s.patches.length - 1];
  const current = last ? last.toBuildId : s.buildId;
  if (current !== cmd.fromBuildId)
    return refused(`pid ${s.pid} runs build ${current}; the patch starts from ${cmd.fromBuildId}`, current);
  return undefined;
}

/**
 * The results of one command on their way to the registry: `add` queues one; a batch of at most
 * `size` goes out in its own outbox transaction once `size` results wait or the oldest waited
 * RESULT_FLUSH_MS, one transaction at a time (results coming in meanwhile wait for the next).
 * `settle` waits for the one in flight; `emitRest` puts what is left, `size` per event, into the
 * caller's transaction.
 */
class ResultBatches {
  private pending: UpdateResultV1[] = [];
  private inFlight: Promise<void> = Promise.resolve();
  private flushing = false;
  private timer?: NodeJS.Timeout;
  private failed?: Error;
  private closing = false;

  constructor(
    private readonly outbox: Outbox,
    private readonly cmd: UpdateCommandV1,
    private readonly cause: CloudEvent,
    private readonly size: number,
  ) {}

  add(r: UpdateResultV1): void {
    this.pending.push(r);
    if (this.pending.length >= this.size) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), RESULT_FLUSH_MS);
  }

  async settle(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.inFlight;
  }

  emitRest(tx: OutboxTx): void {
    while (this.pending.length > 0) this.emit(tx, this.pending.splice(0, this.size));
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // One transaction at a time; what comes in meanwhile goes with the next (or the last) one.
    if (this.flushing || this.closing || this.failed || this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.size);
    this.flushing = true;
    this.inFlight = this.outbox
      .transact(async (tx) => this.emit(tx, batch))
      .catch((err: Error) => {
        // Not lost: they go out with the command's last transaction instead.
        this.failed = err;
        this.pending.unshift(...batch);
      })
      .finally(() => {
        this.flushing = false;
        if (this.closing) return;
        if (this.pending.length >= this.size) this.flush();
        else if (this.pending.length > 0) this.timer ??= setTimeout(() => this.flush(), RESULT_FLUSH_MS);
      });
  }

  private emit(tx: OutboxTx, results: UpdateResultV1[]): void {
    const data: UpdateResultsV2 = {
      rolloutId: this.cmd.rolloutId,
      host: this.cmd.host,
      program: this.cmd.program,
      results,
    };
    tx.emit(Topics.updateResult, this.cmd.program, data, { causedBy: this.cause });
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
      if (Date.now() >= deadline)
        throw new Error(`downloading ${url} failed for a minute: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
  }
}
