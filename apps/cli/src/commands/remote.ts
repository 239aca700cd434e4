import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type {
  DeletedVersionView,
  InventoryView,
  RolloutRequestView,
  RolloutView,
  VersionView,
} from '@dsu/pipeline';
import { parseUpdatePointSpec } from '@dsu/instrument';
import { CliError } from '../errors';
import { reportError } from '../fail-with';
import type { Output } from '../output';
import { table } from '../table';
import { GatewayClient, pollUntil } from './gateway-client';

// The remote side of the CLI: commands that talk to the gateway (DSU_GATEWAY, default the
// embedded one started by `dsu up`).

/**
 * Runs a remote command; a refusal by the gateway or an unreachable gateway becomes one error
 * line (or `{"error": ...}` with --json) and exit code 1, never a stack trace.
 */
export function guarded<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A): Promise<number> => {
    const out = args[args.length - 1] as Output;
    try {
      return await fn(...args);
    } catch (err) {
      return reportError(out, err);
    }
  };
}

const waitMs = () => Number(process.env.DSU_WAIT_TIMEOUT_MS ?? 15 * 60_000);

/** A poll's request; undefined while the gateway is down or restarting (the poll goes on waiting). */
async function unlessRestarting<T>(request: () => Promise<T>): Promise<T | undefined> {
  try {
    return await request();
  } catch (err) {
    if (/^gateway .*: HTTP 503: |^no gateway answers/.test((err as Error).message)) return undefined;
    throw err;
  }
}
const enc = encodeURIComponent;

/** `dsu submit <src-dir> --program P --version V`: upload, wait for the build and the patch verdict. */
async function submitCommandBody(
  src: string,
  opts: { program: string; version: string; bin?: string; updatePoint: string[] },
  out: Output,
): Promise<number> {
  // Checked where it is typed: a misspelt update point is said before anything is packed or uploaded.
  for (const p of opts.updatePoint) {
    try {
      parseUpdatePointSpec(p);
    } catch (err) {
      throw new CliError('invalid-update-point', (err as Error).message);
    }
  }
  const gw = GatewayClient.fromEnv();
  out.progress(`upload    ${src} to ${gw.url}`);
  const { packDir } = await import('@dsu/pipeline'); // loaded on use: keeps the CLI's start-up light
  const tarball = await packDir(resolve(src));
  await gw.request('POST', '/programs', { id: opts.program });
  const q = new URLSearchParams();
  if (opts.bin) q.set('bin', opts.bin);
  for (const p of opts.updatePoint) q.append('updatePoint', p);
  const path = `/programs/${enc(opts.program)}/versions/${enc(opts.version)}`;
  await gw.request('POST', `${path}?${q}`, tarball, { 'content-type': 'application/gzip' });
  out.log(`submitted ${opts.program} ${opts.version} (${tarball.length} bytes of source) to ${gw.url}`);
  const built = await pollUntil(`the build of ${opts.program} ${opts.version}`, waitMs(), async () => {
    out.progress(`compile   ${opts.program} ${opts.version} on the compiler service`);
    const v = await unlessRestarting(() => gw.request<VersionView>('GET', path));
    return !v || v.status === 'building' ? undefined : v;
  });
  if (built.status === 'failed') {
    out.log(`compile   failed: ${built.error}`);
    if (built.diagnostics) out.log(built.diagnostics.trimEnd());
    out.result({
      program: opts.program,
      version: opts.version,
      build: { status: 'failed', buildId: null, error: built.error },
      patch: null,
    });
    return 1;
  }
  out.log(`compile   built in ${built.durationMs} ms, build id ${built.buildId}`);
  let patch: { id: string | null; verdict: string | null; error?: string } | null = null;
  if (built.patch) {
    const from = built.patch.fromVersion;
    const t1 = Date.now();
    const p = await pollUntil(
      `the patch ${built.patch.fromVersion} -> ${opts.version} and its verdict`,
      waitMs(),
      async () => {
        const v = await unlessRestarting(() => gw.request<VersionView>('GET', path));
        // generation, then the checker's verdict: the phase the registry reports
        const phase = v?.patch?.status === 'generated' ? 'check    ' : 'patch    ';
        out.progress(`${phase} ${from} -> ${opts.version}`);
        return v?.patch && (v.patch.status === 'failed' || v.patch.verdict !== null) ? v.patch : undefined;
      },
    );
    if (p.status === 'failed') {
      out.log(`patch     ${p.fromVersion} -> ${opts.version} failed: ${p.error}`);
      patch = { id: null, verdict: null, error: p.error ?? 'patch generation failed' };
    } else {
      out.log(`patch     ${p.fromVersion} -> ${opts.version}: ${p.id}`);
      out.log(`check     verdict ${p.verdict} (patch and check took ${elapsed(t1)})`);
      patch = { id: p.id, verdict: p.verdict };
    }
  } else {
    out.log('patch     none (first version of the program)');
  }
  out.result({
    program: opts.program,
    version: opts.version,
    build: { status: 'built', buildId: built.buildId },
    patch,
  });
  return patch === null || patch.verdict === 'approved' ? 0 : 1;
}

/** `dsu install P V --out <dir>`: the built executable (under its --bin name) and its model. */
async function installCommandBody(
  program: string,
  version: string,
  opts: { out: string },
  out: Output,
): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const v = await gw.request<VersionView>('GET', `/programs/${enc(program)}/versions/${enc(version)}`);
  if (v.status !== 'built' || !v.executable || !v.executableSha256 || !v.modelSha256) {
    out.fail({
      code: 'version-not-built',
      error: `${program} ${version} is ${v.status}, not built${v.error ? `: ${v.error.split('\n')[0]}` : ''}`,
    });
    return 1;
  }
  const dir = resolve(opts.out);
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, v.executable);
  writeFileSync(exe, await gw.download(`/artifacts/${v.executableSha256}`));
  chmodSync(exe, 0o755);
  const model = `${exe}.dsu.json`;
  writeFileSync(model, await gw.download(`/artifacts/${v.modelSha256}`));
  out.log(`installed ${program} ${version} (build ${v.buildId}) -> ${exe}`);
  out.result({ program, version, buildId: v.buildId, executable: exe, model });
  return 0;
}

/** `dsu rollout P --to V [--allow-empty]`: request the rollout and wait for every targeted process. */
async function rolloutCommandBody(
  program: string,
  opts: { to: string; allowEmpty?: boolean },
  out: Output,
): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const { rolloutId } = await gw.request<RolloutRequestView>('POST', '/rollouts', {
    program,
    version: opts.to,
  });
  out.progress(`rollout   ${rolloutId}: ${program} -> ${opts.to} ...`);
  return awaitRollout(gw, rolloutId, opts.to, out, opts);
}

/**
 * A poll whose interval starts at 10 ms and grows by half each time up to 250 ms: a rollout of a
 * few processes is seen done within milliseconds (a fixed 150 ms poll was most of a small
 * rollout's time), a long one costs the gateway four requests a second. Not reset when results
 * come in: each poll of a big rollout is a big answer, built on the event loop that records the
 * results. The gateway has no push or long-poll endpoint to wait on.
 */
function adaptivePoll() {
  let interval = 10;
  const next = () => {
    const wait = interval;
    interval = Math.min(250, Math.ceil(interval * 1.5));
    return wait;
  };
  return <T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> =>
    pollUntil(what, timeoutMs, fn, next);
}

/**
 * Waits until rollout `rolloutId` finishes (completed, failed or aborted), printing each
 * process's outcome and the notes; exit code 0 only when it completed. A rollout that targeted no
 * process is a `nothing-to-update` failure saying why, unless `allowEmpty`.
 */
export async function awaitRollout(
  gw: GatewayClient,
  rolloutId: string,
  target: string,
  out: Output,
  { allowEmpty = false }: { allowEmpty?: boolean } = {},
): Promise<number> {
  const opts = { to: target };
  // Processes on builds with no patch to the target wait while the pipeline makes one; the
  // rollout lives in the gateway's database, so a gateway restarted meanwhile is waited for too.
  let unreachableSince = 0;
  let waitingShown = false;
  const poll = adaptivePoll();
  const r = await poll(`rollout ${rolloutId}`, waitMs(), async () => {
    let v: RolloutView;
    try {
      v = await gw.request<RolloutView>('GET', `/rollouts/${enc(rolloutId)}`);
    } catch (err) {
      // Down, or restarting (its start-up probe answers 503 until it is up again): wait for it.
      if (!/^no gateway answers|: HTTP 503: /.test((err as Error).message)) throw err;
      if (!unreachableSince) {
        unreachableSince = Date.now();
        out.progress(`rollout   the gateway does not answer; waiting for it (${(err as Error).message})`);
      }
      return undefined;
    }
    unreachableSince = 0;
    if (v.targets.length > 0) out.progress(`rollout   ${rolloutId}: ${donePerHost(v)}`);
    const waiting = v.targets.filter((t) => t.state === 'waiting');
    if (waiting.length > 0 && !waitingShown) {
      waitingShown = true;
      out.progress(
        `rollout   ${waiting.length} process(es) wait for a patch from their build to ${opts.to} (generated on demand)`,
      );
    }
    return v.status === 'completed' || v.status === 'failed' || v.status === 'aborted' ? v : undefined;
  });
  if (r.status === 'completed' && r.targets.length === 0 && !allowEmpty)
    throw new CliError(
      'nothing-to-update',
      `${await whyNothingToUpdate(gw, r.program, target)} (rollout ${rolloutId}); pass --allow-empty to accept a rollout that updates nothing`,
    );
  for (const x of r.results) {
    out.log(
      `apply     ${x.host} pid ${x.pid}: ${x.outcome}${x.updatePoint ? ` at '${x.updatePoint}'` : ''}, pause ${x.pauseUs} us${x.reasons.length ? ` (${x.reasons.join('; ')})` : ''}`,
    );
  }
  for (const n of r.notes) out.log(`note      ${n}`);
  out.log(
    `rollout   ${rolloutId} ${r.status}: ${r.results.filter((x) => x.outcome === 'applied').length}/${r.results.length} processes updated`,
  );
  out.result({
    rolloutId,
    status: r.status,
    patchId: r.patchId,
    patchIds: r.patchIds,
    results: r.results.map((x) => ({
      host: x.host,
      pid: x.pid,
      outcome: x.outcome,
      pauseUs: x.pauseUs,
      updatePoint: x.updatePoint,
      patchId: x.patchId,
    })),
    notes: r.notes,
  });
  return r.status === 'completed' ? 0 : 1;
}

/** Why a rollout targeted no process: none of the program runs anywhere, or all run the target. */
async function whyNothingToUpdate(gw: GatewayClient, program: string, target: string): Promise<string> {
  const hosts = await gw.request<InventoryView[]>('GET', '/inventory').catch(() => []);
  const procs = hosts.flatMap((h) => h.processes.filter((p) => p.program === program));
  if (procs.length === 0)
    return `nothing to update: no applier reports a running process of '${program}' (is it started with the DSU_RUN_DIR of an applier, and has a heartbeat come in since?)`;
  return `nothing to update: all ${procs.length} process(es) of '${program}' already run ${target}`;
}

/** `5/9 processes done (h1 3/4, h2 2/5)`: a rollout's progress, per host (the first four). */
export function donePerHost(v: Pick<RolloutView, 'targets'>): string {
  const hosts = new Map<string, [number, number]>();
  for (const t of v.targets) {
    const [d, n] = hosts.get(t.host) ?? [0, 0];
    const done = t.reported || t.state === 'failed' || t.state === 'aborted';
    hosts.set(t.host, [d + (done ? 1 : 0), n + 1]);
  }
  const done = [...hosts.values()].reduce((sum, [d]) => sum + d, 0);
  const each = [...hosts].slice(0, 4).map(([h, [d, n]]) => `${h} ${d}/${n}`);
  return `${done}/${v.targets.length} processes done (${each.join(', ')}${hosts.size > 4 ? ', ...' : ''})`;
}

/** Seconds since `t0`, for progress lines. */
export const elapsed = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

/** `dsu versions P` */
async function versionsCommandBody(program: string, out: Output): Promise<number> {
  const list = await GatewayClient.fromEnv().request<VersionView[]>(
    'GET',
    `/programs/${enc(program)}/versions`,
  );
  const rows = list.map((v) => [
    v.version,
    v.status,
    v.buildId ?? '-',
    v.patch ? `from ${v.patch.fromVersion}: ${v.patch.verdict ?? v.patch.status}` : '-',
  ]);
  if (list.length === 0) out.log(`no versions of '${program}' yet ('dsu submit' adds one)`);
  else for (const l of table(['VERSION', 'STATUS', 'BUILD', 'PATCH'], rows)) out.log(l);
  out.result(list);
  return 0;
}

/** `dsu versions delete P V`: removes a version whose build failed (its label is free again). */
async function versionDeleteBody(program: string, version: string, out: Output): Promise<number> {
  const r = await GatewayClient.fromEnv().request<DeletedVersionView>(
    'DELETE',
    `/programs/${enc(program)}/versions/${enc(version)}`,
  );
  out.log(`deleted ${program} ${version} (its build had failed); the label can be submitted again`);
  out.result(r);
  return 0;
}

/** `dsu rollouts` */
async function rolloutsCommandBody(opts: { program?: string }, out: Output): Promise<number> {
  const q = opts.program ? `?program=${enc(opts.program)}` : '';
  const list = await GatewayClient.fromEnv().request<RolloutView[]>('GET', `/rollouts${q}`);
  const rows = list.map((r) => {
    const applied = r.results.filter((x) => x.outcome === 'applied').length;
    return [r.rolloutId, r.program, r.version, r.status, `${applied}/${r.targets.length}`, r.requestedAt];
  });
  if (list.length === 0) out.log('no rollouts');
  else
    for (const l of table(['ROLLOUT', 'PROGRAM', 'TO', 'STATUS', 'APPLIED', 'REQUESTED'], rows)) out.log(l);
  out.result(list);
  return 0;
}

export const submitCommand = guarded(submitCommandBody);
export const installCommand = guarded(installCommandBody);
export const rolloutCommand = guarded(rolloutCommandBody);
export const versionsCommand = guarded(versionsCommandBody);
export const versionDeleteCommand = guarded(versionDeleteBody);
export const rolloutsCommand = guarded(rolloutsCommandBody);
