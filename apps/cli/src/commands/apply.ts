import { applyVerifiedBundle, withControl } from '@dsu/control-client';
import * as trust from '@dsu/patch-format';
import { failWith } from '../fail-with';
import type { Output } from '../output';
import { describeOutcome } from './local';

/** Said on stderr whatever the output mode: --allow-unsigned must never go unnoticed. */
function warnLoudly(lines: string[]): void {
  for (const line of lines) process.stderr.write(`dsu: WARNING: ${line}\n`);
}

/**
 * `dsu apply <patch-dir> --pid <pid> [--allow-unsigned]`: exit 0 only when applied.
 *
 * Before anything reaches the process, the bundle must be checked and approved (verdict.json),
 * signed by a trusted key over its current content (signature.json, docs/bundle-signing.md), and
 * made for the program and build the process runs now (its STATUS). Otherwise the outcome is
 * `refused` with the reason and a stable `refusal` code, and the process is never staged.
 * `--allow-unsigned` (local development) waives the verdict and signature requirement, loudly;
 * a rejected verdict and a wrong target are refused regardless.
 */
export async function applyCommand(
  dir: string,
  opts: { pid: number; timeoutMs: number; runDir: string; allowUnsigned?: boolean },
  out: Output,
): Promise<number> {
  const allowUnsigned = opts.allowUnsigned === true;
  const refused = (code: string, reason: string, extra: Record<string, unknown> = {}) => {
    const r = { outcome: 'refused', pauseUs: 0, updatePoint: null, reasons: [reason] };
    describeOutcome(r, out, `bundle ${dir} on pid ${opts.pid}`);
    out.result({ ...r, refusal: code, pid: opts.pid, ...extra });
    return 1;
  };
  let accepted: trust.AcceptedBundle;
  try {
    accepted = trust.acceptBundleDir(dir, trust.loadTrustStore(trust.keyPathsFromEnv()), { allowUnsigned });
  } catch (err) {
    if (err instanceof trust.BundleRefusal)
      return refused(err.code, err.message, allowUnsigned ? { allowUnsigned } : {});
    return failWith(out, 'bundle-unreadable', `${dir}: ${(err as Error).message}`);
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
  let r: Awaited<ReturnType<typeof applyVerifiedBundle>>;
  try {
    const status = await withControl(opts.pid, opts.runDir, (c) => c.status());
    trust.checkBundleTarget(manifest, status);
    r = await applyVerifiedBundle(opts.pid, accepted.soPath, manifest, opts.runDir, opts.timeoutMs);
  } catch (err) {
    if (err instanceof trust.BundleRefusal) return refused(err.code, err.message, report);
    return failWith(out, 'control', `pid ${opts.pid}: ${(err as Error).message}`);
  }
  if (signature.verified)
    out.log(
      `signature verified: key ${signature.keyId}${signature.keyName ? ` (${signature.keyName})` : ''}`,
    );
  describeOutcome(r, out, `patch ${r.patchId.slice(0, 16)} on pid ${r.pid}`);
  // data patches: how many live instances were transformed and how long it took (ABI.md §10);
  // lazily transformed types wait for their instances' first touch
  if (r.lazyTypes) out.log(`${r.lazyTypes} type(s) transformed lazily: heap instances on their first touch`);
  out.result({
    outcome: r.outcome,
    pauseUs: r.pauseUs,
    updatePoint: r.updatePoint,
    reasons: r.reasons,
    pid: r.pid,
    stageMs: r.stageMs,
    buildId: r.buildId,
    ...report,
    ...(r.instances !== undefined ? { instances: r.instances, transformUs: r.transformUs } : {}),
    ...(r.lazyTypes ? { lazyTypes: r.lazyTypes } : {}),
    // stack-frame mapping (ABI.md §11): the threads whose frames were rebuilt in the new code
    ...(r.frames ? { frames: r.frames } : {}),
  });
  return r.outcome === 'applied' ? 0 : 1;
}
