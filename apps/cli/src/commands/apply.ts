import {
  type ApplyResult,
  applyOnConnection,
  listPids,
  mapLimit,
  type Status,
  withControl,
} from '@dsu/control-client';
import * as trust from '@dsu/patch-format';
import { failWith } from '../fail-with';
import type { Output } from '../output';
import { describeOutcome } from './local';

/** Said on stderr whatever the output mode: --allow-unsigned must never go unnoticed. */
function warnLoudly(lines: string[]): void {
  for (const line of lines) process.stderr.write(`dsu: WARNING: ${line}\n`);
}

export interface ApplyOptions {
  /** One pid (the original form) or several (`--pid a,b,c`). */
  pid?: number | number[];
  /** Every process in the run directory that runs `program` (default: the bundle's program). */
  all?: boolean;
  program?: string;
  /** Processes talked to at once (default DSU_APPLY_CONCURRENCY, else 16). */
  concurrency?: number;
  timeoutMs: number;
  runDir: string;
  allowUnsigned?: boolean;
}

/** One process's outcome, as `--json` reports it. */
type PidResult = Record<string, unknown> & { pid: number; outcome: string; skipped?: boolean };

/**
 * `dsu apply <patch-dir> --pid <pid>[,<pid>...] | --all [--program P] [--allow-unsigned]`: exit 0
 * only when every process is applied (or, with several, already carried the patch).
 *
 * Before anything reaches a process, the bundle must be checked and approved (verdict.json),
 * signed by a trusted key over its current content (signature.json, docs/bundle-signing.md), and
 * made for the program and build the process runs now (its STATUS). Otherwise the outcome is
 * `refused` with the reason and a stable `refusal` code, and the process is never staged.
 * `--allow-unsigned` (local development) waives the verdict and signature requirement, loudly;
 * a rejected verdict and a wrong target are refused regardless. The bundle is verified once,
 * whatever the number of processes; those are updated side by side, `concurrency` at a time,
 * one control connection each. One pid prints the result object as before; several print
 * `{patchId, signature, results: [one per pid], applied, failed, skipped, elapsedMs}`.
 */
export async function applyCommand(dir: string, opts: ApplyOptions, out: Output): Promise<number> {
  const pids = opts.pid === undefined ? [] : Array.isArray(opts.pid) ? opts.pid : [opts.pid];
  if (opts.all && pids.length > 0) return failWith(out, 'usage', 'give either --pid or --all, not both');
  if (!opts.all && pids.length === 0)
    return failWith(out, 'usage', 'which processes? give --pid <pid>[,<pid>...] or --all --program <name>');
  const single = !opts.all && pids.length === 1;
  const allowUnsigned = opts.allowUnsigned === true;
  let accepted: trust.AcceptedBundle;
  try {
    accepted = trust.acceptBundleDir(dir, trust.loadTrustStore(trust.keyPathsFromEnv()), { allowUnsigned });
  } catch (err) {
    if (!(err instanceof trust.BundleRefusal))
      return failWith(out, 'bundle-unreadable', `${dir}: ${(err as Error).message}`);
    // Refused before any process is contacted: the same refusal for each of them.
    const extra = { refusal: err.code, ...(allowUnsigned ? { allowUnsigned } : {}) };
    const each = pids.map((pid) => refusedResult(pid, err.message, extra));
    if (single) {
      describeOutcome(each[0] as never, out, `bundle ${dir} on pid ${pids[0]}`);
      out.result(each[0]);
      return 1;
    }
    describeOutcome(
      { outcome: 'refused', pauseUs: 0, updatePoint: null, reasons: [err.message] },
      out,
      `bundle ${dir}`,
    );
    out.result({ results: each, applied: 0, failed: each.length, skipped: 0, ...extra });
    return 1;
  }
  const { manifest, signature, warnings } = accepted;
  const report = {
    patchId: manifest.patchId,
    signature,
    ...(allowUnsigned ? { allowUnsigned } : {}),
    ...(warnings.length ? { warnings } : {}),
  };
  if (allowUnsigned)
    warnLoudly([
      '--allow-unsigned: the bundle is applied without a verified signature if it has none (local development only; never use it in production)',
      ...warnings,
      ...(signature.verified ? [`(the signature verified anyway: key ${signature.keyId})`] : []),
    ]);
  if (signature.verified)
    out.log(
      `signature verified: key ${signature.keyId}${signature.keyName ? ` (${signature.keyName})` : ''}`,
    );
  if (single) return applySingle(pids[0], accepted, opts, report, out);

  const t0 = Date.now();
  const program = opts.program ?? manifest.program;
  const targets = opts.all ? listPids(opts.runDir) : pids;
  const concurrency = opts.concurrency ?? concurrencyFromEnv();
  const all = await mapLimit(targets, concurrency, (pid) =>
    applyMany(pid, accepted, opts, opts.all ? program : undefined),
  );
  const results = all.filter((r): r is PidResult => r !== undefined);
  if (opts.all && results.length === 0)
    return failWith(
      out,
      'no-process',
      `no process in ${opts.runDir} runs '${program}' (is DSU_RUN_DIR / --run-dir the one it uses?)`,
    );
  for (const r of results) {
    if (r.skipped) out.log(`pid ${r.pid}: already carries patch ${manifest.patchId.slice(0, 16)} (skipped)`);
    else describeOutcome(r as never, out, `patch ${manifest.patchId.slice(0, 16)} on pid ${r.pid}`);
  }
  const skipped = results.filter((r) => r.skipped).length;
  const applied = results.filter((r) => r.outcome === 'applied' && !r.skipped).length;
  const failed = results.length - applied - skipped;
  const elapsedMs = Date.now() - t0; // from the verified bundle to the last result
  out.log(
    `${applied} applied, ${failed} failed, ${skipped} skipped of ${results.length} process(es) in ${elapsedMs} ms`,
  );
  out.result({ ...report, results, applied, failed, skipped, elapsedMs });
  return failed === 0 ? 0 : 1;
}

function concurrencyFromEnv(): number {
  const v = Number(process.env.DSU_APPLY_CONCURRENCY ?? 16);
  return Number.isInteger(v) && v > 0 ? v : 16;
}

function refusedResult(pid: number, reason: string, extra: Record<string, unknown> = {}): PidResult {
  return { outcome: 'refused', pauseUs: 0, updatePoint: null, reasons: [reason], pid, ...extra };
}

/** The `--json` fields of one process's update (the single-pid result object, less the report). */
function resultFields(r: ApplyResult): PidResult {
  return {
    outcome: r.outcome,
    pauseUs: r.pauseUs,
    updatePoint: r.updatePoint,
    reasons: r.reasons,
    pid: r.pid,
    stageMs: r.stageMs,
    buildId: r.buildId,
    ...(r.instances !== undefined ? { instances: r.instances, transformUs: r.transformUs } : {}),
    ...(r.lazyTypes ? { lazyTypes: r.lazyTypes } : {}),
    // stack-frame mapping (ABI.md §11): the threads whose frames were rebuilt in the new code
    ...(r.frames ? { frames: r.frames } : {}),
  };
}

/** STATUS, the target check, STAGE and COMMIT over one connection to `pid`. */
function stageAndCommit(
  pid: number,
  accepted: trust.AcceptedBundle,
  opts: ApplyOptions,
  before?: (s: Status) => PidResult | null | undefined,
): Promise<ApplyResult | PidResult | null> {
  return withControl(pid, opts.runDir, async (c) => {
    const status = await c.status();
    const early = before?.(status);
    if (early !== undefined) return early;
    trust.checkBundleTarget(accepted.manifest, status);
    return applyOnConnection(c, accepted.soPath, accepted.manifest, opts.timeoutMs);
  });
}

/** One pid, the original output: the result object, or `{"error"}` when the process is unreachable. */
async function applySingle(
  pid: number,
  accepted: trust.AcceptedBundle,
  opts: ApplyOptions,
  report: Record<string, unknown>,
  out: Output,
): Promise<number> {
  let r: ApplyResult;
  try {
    r = (await stageAndCommit(pid, accepted, opts)) as ApplyResult;
  } catch (err) {
    if (err instanceof trust.BundleRefusal) {
      const refused = refusedResult(pid, err.message, { refusal: err.code, ...report });
      describeOutcome(refused as never, out, `bundle on pid ${pid}`);
      out.result(refused);
      return 1;
    }
    return failWith(out, 'control', `pid ${pid}: ${(err as Error).message}`);
  }
  describeOutcome(r, out, `patch ${r.patchId.slice(0, 16)} on pid ${r.pid}`);
  // data patches: how many live instances were transformed and how long it took (ABI.md §10);
  // lazily transformed types wait for their instances' first touch
  if (r.lazyTypes) out.log(`${r.lazyTypes} type(s) transformed lazily: heap instances on their first touch`);
  out.result({ ...resultFields(r), ...report });
  return r.outcome === 'applied' ? 0 : 1;
}

/**
 * One of several pids: a process already carrying the patch is skipped (not applied again); a
 * wrong target is refused; an unreachable process is `failed` with the reason. With `onlyProgram`
 * (`--all`), a process running another program is left out (undefined).
 */
async function applyMany(
  pid: number,
  accepted: trust.AcceptedBundle,
  opts: ApplyOptions,
  onlyProgram?: string,
): Promise<PidResult | undefined> {
  const patchId = accepted.manifest.patchId;
  try {
    const r = await stageAndCommit(pid, accepted, opts, (s) => {
      if (onlyProgram !== undefined && s.program !== onlyProgram) return null;
      const done = s.patches.find((p) => p.id === patchId);
      if (!done) return undefined;
      return {
        outcome: 'applied',
        skipped: true,
        pauseUs: done.pauseUs,
        updatePoint: done.updatePoint,
        reasons: ['already applied (not applied again)'],
        pid,
        buildId: done.toBuildId,
      };
    });
    if (r === null) return undefined;
    return 'patchId' in r && 'stageMs' in r ? resultFields(r as ApplyResult) : (r as PidResult);
  } catch (err) {
    if (err instanceof trust.BundleRefusal) return refusedResult(pid, err.message, { refusal: err.code });
    return {
      outcome: 'failed',
      pauseUs: 0,
      updatePoint: null,
      reasons: [(err as Error).message],
      pid,
      error: 'control',
    };
  }
}
