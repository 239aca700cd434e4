import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CloudEvent,
  type PatchGeneratedV1,
  type PatchVerdictV1,
  Topics,
  validatePayload,
} from '@dsu/events';
import type { Log, Outbox } from '@dsu/outbox';
import { approvalMessage, loadOrCreateSigningKey, signApproval } from '@dsu/patch-format';
import type { PipelineInfra } from '../shared/infra';
import { unpackTo } from '../shared/tarball';
import { checkBundle } from './check-bundle';

export const CHECKER = 'checker';

/**
 * The checker's use case: on `dsu.patch.generated`, unpack the bundle, run the checks, sign an
 * approved bundle (Ed25519 over patch id, bundle hash and both build ids) and report the verdict.
 */
export async function checkPatch(
  infra: PipelineInfra,
  outbox: Outbox,
  log: Log,
  event: CloudEvent,
): Promise<void> {
  if (await outbox.seen(CHECKER, event)) return;
  const p = event.data as PatchGeneratedV1;
  const work = await mkdtemp(join(tmpdir(), 'dsu-check-'));
  let verdict: PatchVerdictV1;
  try {
    await unpackTo(await infra.store.get(p.bundleSha256), work);
    const check = checkBundle(work);
    if (check.patchId !== null && check.patchId !== p.patchId) {
      check.findings.push({
        rule: 'patch-id',
        severity: 'error',
        message: `the bundle's patch id ${check.patchId} is not the announced ${p.patchId}`,
      });
      check.verdict = 'rejected';
    }
    let signature: string | null = null;
    let keyId: string | null = null;
    if (check.verdict === 'approved') {
      const key = loadOrCreateSigningKey(infra.config.keys.signingKey, infra.config.keys.signingPublicKey);
      signature = signApproval(
        key,
        approvalMessage({
          patchId: p.patchId,
          bundleSha256: p.bundleSha256,
          fromBuildId: p.from.buildId,
          toBuildId: p.to.buildId,
        }),
      );
      keyId = key.keyId;
    }
    verdict = {
      program: p.program,
      patchId: p.patchId,
      bundleSha256: p.bundleSha256,
      from: p.from,
      to: p.to,
      verdict: check.verdict,
      findings: check.findings,
      updatePoints: check.updatePoints,
      signature,
      keyId,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  log('info', 'patch checked', {
    program: p.program,
    patchId: p.patchId,
    verdict: verdict.verdict,
    findings: verdict.findings.length,
  });
  await outbox.once(
    CHECKER,
    event,
    async (tx) => void tx.emit(Topics.patchVerdict, p.program, verdict, { causedBy: event }),
  );
}

export function checkerSubscription(infra: PipelineInfra, outbox: Outbox, log: Log) {
  return {
    group: infra.group(CHECKER),
    topics: [Topics.patchGenerated],
    validate: validatePayload,
    handler: (e: CloudEvent) => checkPatch(infra, outbox, log, e),
  };
}
