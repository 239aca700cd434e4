import { type CloudEvent, Topics, validatePayload } from '@dsu/events';
import type { Actor } from '@dsu/access';
import type { Log, Outbox, OutboxTx } from '@dsu/outbox';
import type { PipelineInfra } from '../shared/infra';
import * as commands from './commands';
import { GATEWAY, type RegistryContext } from './context';
import { listInventory } from './inventory';
import { project } from './projection';
import * as queries from './queries';
import { resume, underProgramLock } from './rollout-machine';
import type {
  AbortedRollout,
  DeletedVersionView,
  InventoryView,
  PatchRequestView,
  PatchView,
  ProgramRegistrationView,
  ProgramView,
  ResultView,
  RolloutRequestView,
  RolloutView,
  VerdictView,
  VersionView,
} from './views';

/**
 * The gateway's registry: a projection of the pipeline's events into the database, the
 * commands users give through the HTTP API, and rollouts (planning per-host update commands
 * from the inventory, completing a rollout when every targeted process reported).
 *
 * A facade, so the gateway, the deadlines and the tests hold one object: the work is in
 * commands.ts, queries.ts, projection.ts, rollout-machine.ts and inventory.ts, each a set of
 * functions over the same context.
 */
export class Registry {
  private readonly ctx: RegistryContext;

  constructor(infra: PipelineInfra, outbox: Outbox, log: Log) {
    this.ctx = { infra, outbox, log };
  }

  /** The gateway's consumer: every event the projection handles, validated against its schema. */
  subscription() {
    return {
      group: this.ctx.infra.group(GATEWAY),
      topics: [
        Topics.buildCompleted,
        Topics.buildFailed,
        Topics.patchGenerated,
        Topics.patchFailed,
        Topics.patchVerdict,
        Topics.rolloutRequested,
        Topics.updateResult,
        Topics.agentHeartbeat,
      ],
      validate: validatePayload,
      handler: (e: CloudEvent, topic: string) => this.project(e, topic),
    };
  }

  // ---- commands (HTTP API): commands.ts ----

  registerProgram(id: string, description = '', by?: Actor): Promise<ProgramRegistrationView> {
    return commands.registerProgram(this.ctx, id, description, by);
  }

  submitVersion(s: commands.SubmitVersion): Promise<VersionView> {
    return commands.submitVersion(this.ctx, s);
  }

  deleteVersion(program: string, version: string, by?: Actor): Promise<DeletedVersionView> {
    return commands.deleteVersion(this.ctx, program, version, by);
  }

  requestPatch(
    program: string,
    fromVersion: string,
    toVersion: string,
    by?: Actor,
  ): Promise<PatchRequestView> {
    return commands.requestPatch(this.ctx, program, fromVersion, toVersion, by);
  }

  requestRollout(
    program: string,
    version: string,
    by?: Actor,
    retryOf?: string,
  ): Promise<RolloutRequestView> {
    return commands.requestRollout(this.ctx, program, version, by, retryOf);
  }

  abortRollout(rolloutId: string, reason: string, by?: Actor): Promise<AbortedRollout> {
    return commands.abortRollout(this.ctx, rolloutId, reason, by);
  }

  retryRollout(rolloutId: string, by?: Actor): Promise<RolloutRequestView> {
    return commands.retryRollout(this.ctx, rolloutId, by);
  }

  // ---- queries: queries.ts, inventory.ts ----

  listPrograms(): Promise<ProgramView[]> {
    return queries.listPrograms(this.ctx);
  }

  listVersions(program: string): Promise<VersionView[]> {
    return queries.listVersions(this.ctx, program);
  }

  getVersion(program: string, version: string): Promise<VersionView> {
    return queries.getVersion(this.ctx, program, version);
  }

  listPatches(program?: string): Promise<PatchView[]> {
    return queries.listPatches(this.ctx, program);
  }

  listVerdicts(program?: string): Promise<VerdictView[]> {
    return queries.listVerdicts(this.ctx, program);
  }

  /** Every program's versions with their states, in three queries (the dashboard's feed). */
  listVersionStates(): Promise<queries.VersionStates[]> {
    return queries.listVersionStates(this.ctx);
  }

  /** Oldest first; with `newest`, that many of the newest, newest first. */
  listRollouts(opts: { program?: string; newest?: number } = {}): Promise<RolloutView[]> {
    return queries.listRollouts(this.ctx, opts);
  }

  getRollout(id: string): Promise<RolloutView> {
    return queries.getRollout(this.ctx, id);
  }

  listResults(rolloutId?: string): Promise<ResultView[]> {
    return queries.listResults(this.ctx, rolloutId);
  }

  listInventory(): Promise<InventoryView[]> {
    return listInventory(this.ctx);
  }

  // ---- events and rollouts: projection.ts, rollout-machine.ts ----

  /** Applies one event of `subscription()` (see projection.ts). */
  project(event: CloudEvent, topic: string): Promise<void> {
    return project(this.ctx, event, topic);
  }

  /** At start-up: moves on the rollouts a stopped gateway left waiting for patches decided meanwhile. */
  resume(): Promise<void> {
    return resume(this.ctx);
  }

  /** Runs `fn` under the program's lock, then moves its waiting rollout targets on (the request deadlines). */
  underProgramLock(program: string, fn?: (tx: OutboxTx) => Promise<void>): Promise<void> {
    return underProgramLock(this.ctx, program, fn);
  }
}
