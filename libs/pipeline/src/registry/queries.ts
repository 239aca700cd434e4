// The registry's read side (the gateway's GETs): plain reads outside any transaction, shaped into
// the views of views.ts.
import {
  PatchEntity,
  ProgramEntity,
  RolloutEntity,
  RolloutTargetEntity,
  UpdateResultEntity,
  VerdictEntity,
  VersionEntity,
} from '@dsu/persistence';
import type { RegistryContext } from './context';
import { RegistryError } from './errors';
import { verdictsOf } from './patch-requests';
import type { PatchView, ProgramView, ResultView, RolloutView, VerdictView, VersionView } from './views';

/** Every registered program, by id. */
export async function listPrograms(ctx: RegistryContext): Promise<ProgramView[]> {
  return (await ctx.infra.ds.getRepository(ProgramEntity).find({ order: { id: 'ASC' } })).map((p) => ({
    id: p.id,
    description: p.description,
  }));
}

/** The program's versions in submission order; 404 program-not-found for a program never registered. */
export async function listVersions(ctx: RegistryContext, program: string): Promise<VersionView[]> {
  await knownProgram(ctx, program);
  const rows = await ctx.infra.ds
    .getRepository(VersionEntity)
    .find({ where: { program }, order: { seq: 'ASC' } });
  return Promise.all(rows.map((v) => versionView(ctx, v)));
}

/** One version; 404 when it was never submitted. */
export async function getVersion(
  ctx: RegistryContext,
  program: string,
  version: string,
): Promise<VersionView> {
  const v = await ctx.infra.ds.getRepository(VersionEntity).findOneBy({ program, version });
  if (!v) {
    await knownProgram(ctx, program);
    throw new RegistryError(
      404,
      `version '${version}' of '${program}' is not known; submit it first`,
      'version-not-found',
    );
  }
  return versionView(ctx, v);
}

/** 404 program-not-found, naming the program, unless it is registered. */
async function knownProgram(ctx: RegistryContext, program: string): Promise<void> {
  if (!(await ctx.infra.ds.getRepository(ProgramEntity).existsBy({ id: program })))
    throw new RegistryError(
      404,
      `program '${program}' is not registered (see 'dsu programs'); submit a version of it first`,
      'program-not-found',
    );
}

/** Every patch request (of one program, or all), oldest first, with its verdict once in. */
export async function listPatches(ctx: RegistryContext, program?: string): Promise<PatchView[]> {
  const rows = await ctx.infra.ds
    .getRepository(PatchEntity)
    .find({ where: program ? { program } : {}, order: { requestedAt: 'ASC' } });
  const verdicts = await verdictsOf(
    ctx.infra.ds.manager,
    rows.map((r) => r.patchId).filter((id): id is string => id !== null),
  );
  return rows.map((p): PatchView => ({
    requestId: p.requestId,
    program: p.program,
    fromVersion: p.fromVersion,
    toVersion: p.toVersion,
    fromBuildId: p.fromBuildId,
    toBuildId: p.toBuildId,
    status: p.status,
    patchId: p.patchId,
    bundleSha256: p.bundleSha256,
    functions: p.functions ?? [],
    types: p.types,
    globals: p.globals,
    error: p.error,
    reasons: p.reasons ?? [],
    verdict: p.patchId ? (verdicts.get(p.patchId)?.verdict ?? null) : null,
    requestedAt: p.requestedAt,
    generatedAt: p.generatedAt,
  }));
}

/** The checker's verdicts (of one program, or all), oldest first, as stored. */
export async function listVerdicts(ctx: RegistryContext, program?: string): Promise<VerdictView[]> {
  return (
    await ctx.infra.ds
      .getRepository(VerdictEntity)
      .find({ where: program ? { program } : {}, order: { checkedAt: 'ASC' } })
  ).map((v) => ({ ...v }));
}

/**
 * The rollouts (of one program, or all), oldest first; with `newest`, only that many of the newest,
 * newest first (the dashboard's feed and `dsu fleet` never read the whole history).
 */
export async function listRollouts(
  ctx: RegistryContext,
  opts: { program?: string; newest?: number } = {},
): Promise<RolloutView[]> {
  const rows = await ctx.infra.ds.getRepository(RolloutEntity).find({
    where: opts.program ? { program: opts.program } : {},
    order: { requestedAt: opts.newest ? 'DESC' : 'ASC' },
    ...(opts.newest ? { take: opts.newest } : {}),
  });
  return Promise.all(rows.map((r) => rolloutView(ctx, r)));
}

/** One rollout; 404 when the id is not known. */
export async function getRollout(ctx: RegistryContext, id: string): Promise<RolloutView> {
  const r = await ctx.infra.ds.getRepository(RolloutEntity).findOneBy({ id });
  if (!r) throw new RegistryError(404, `rollout '${id}' is not known`, 'rollout-not-found');
  return rolloutView(ctx, r);
}

/** The update results (of one rollout, or all), in the order they were reported, as stored. */
export async function listResults(ctx: RegistryContext, rolloutId?: string): Promise<ResultView[]> {
  return (
    await ctx.infra.ds
      .getRepository(UpdateResultEntity)
      .find({ where: rolloutId ? { rolloutId } : {}, order: { reportedAt: 'ASC' } })
  ).map((r) => ({ ...r }));
}

/**
 * A version with the patch from the previous version: the first one requested to this version
 * (at its build); patches a rollout asked for later from older builds are in listPatches. A retry
 * of it wins, so `dsu submit` sees the latest attempt.
 */
async function versionView(ctx: RegistryContext, v: VersionEntity): Promise<VersionView> {
  const toThis = await ctx.infra.ds
    .getRepository(PatchEntity)
    .find({ where: { program: v.program, toVersion: v.version }, order: { requestedAt: 'ASC' } });
  const patch = patchFromPrevious(toThis);
  const verdict = patch?.patchId
    ? await ctx.infra.ds.getRepository(VerdictEntity).findOneBy({ patchId: patch.patchId })
    : null;
  return {
    program: v.program,
    version: v.version,
    status: v.status,
    buildId: v.buildId,
    executable: v.executable,
    executableSha256: v.executableSha256,
    modelSha256: v.modelSha256,
    sourceSha256: v.sourceSha256,
    error: v.error,
    diagnostics: v.diagnostics,
    durationMs: v.durationMs,
    requestedAt: v.requestedAt,
    builtAt: v.builtAt,
    patch: patch
      ? {
          requestId: patch.requestId,
          id: patch.patchId,
          status: patch.status,
          verdict: verdict?.verdict ?? null,
          updatePoints: verdict?.updatePoints ?? null,
          fromVersion: patch.fromVersion,
          error: patch.error,
        }
      : null,
  };
}

/** Of the patches to a version (oldest request first): the latest attempt from the first version asked. */
function patchFromPrevious(toThis: PatchEntity[]): PatchEntity | null {
  return toThis.filter((p) => p.fromVersion === toThis[0]?.fromVersion).pop() ?? null;
}

/** Each version's status and its patch's state (the verdict, else the patch's status), as the dashboard's feed lists them. */
export interface VersionStates {
  program: string;
  versions: { version: string; status: string; patch: string | null }[];
}

/**
 * Every registered program with its versions' states, in three queries whatever their number: the
 * dashboard's feed reads this once a second while a page is open (`listVersions` reads each
 * version's patch and verdict, and its compiler output, one by one).
 */
export async function listVersionStates(ctx: RegistryContext): Promise<VersionStates[]> {
  const ds = ctx.infra.ds;
  const [programs, versions, patches] = await Promise.all([
    ds.getRepository(ProgramEntity).find({ select: { id: true }, order: { id: 'ASC' } }),
    ds.getRepository(VersionEntity).find({
      select: { program: true, version: true, status: true, seq: true },
      order: { seq: 'ASC' },
    }),
    ds.getRepository(PatchEntity).find({
      select: {
        program: true,
        toVersion: true,
        fromVersion: true,
        status: true,
        patchId: true,
        requestedAt: true,
      },
      order: { requestedAt: 'ASC' },
    }),
  ]);
  const verdicts = await verdictsOf(
    ds.manager,
    patches.map((p) => p.patchId).filter((id): id is string => id !== null),
  );
  return programs.map(({ id }) => ({
    program: id,
    versions: versions
      .filter((v) => v.program === id)
      .map((v) => {
        const p = patchFromPrevious(patches.filter((x) => x.program === id && x.toVersion === v.version));
        const verdict = p?.patchId ? verdicts.get(p.patchId)?.verdict : undefined;
        return { version: v.version, status: v.status, patch: p ? (verdict ?? p.status) : null };
      }),
  }));
}

/** A rollout with its targets and results in host then pid order (the order the CLI prints them). */
async function rolloutView(ctx: RegistryContext, r: RolloutEntity): Promise<RolloutView> {
  const targets = await ctx.infra.ds
    .getRepository(RolloutTargetEntity)
    .find({ where: { rolloutId: r.id }, order: { host: 'ASC', pid: 'ASC' } });
  const results = await ctx.infra.ds
    .getRepository(UpdateResultEntity)
    .find({ where: { rolloutId: r.id }, order: { host: 'ASC', pid: 'ASC' } });
  return {
    rolloutId: r.id,
    program: r.program,
    version: r.version,
    status: r.status,
    notes: r.notes,
    requestedAt: r.requestedAt,
    completedAt: r.completedAt,
    patchId: targets.find((t) => t.patchId)?.patchId ?? null,
    patchIds: [...new Set(targets.map((t) => t.patchId).filter((id): id is string => id !== null))],
    targets: targets.map((t) => ({
      host: t.host,
      pid: t.pid,
      patchId: t.patchId,
      reported: t.reported,
      state: t.state,
      fromBuildId: t.fromBuildId,
      reason: t.reason,
    })),
    results: results.map((x) => ({
      host: x.host,
      pid: x.pid,
      outcome: x.outcome,
      pauseUs: x.pauseUs,
      updatePoint: x.updatePoint,
      reasons: x.reasons,
      patchId: x.patchId,
      buildId: x.buildId,
      reportedAt: x.reportedAt,
      instances: x.instances,
    })),
  };
}
