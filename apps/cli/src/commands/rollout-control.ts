import type { AbortedRollout, RolloutRequestView, RolloutView } from '@dsu/pipeline';
import type { Output } from '../output';
import { GatewayClient } from './gateway-client';
import { awaitRollout, guarded } from './remote';

// `dsu rollout abort` / `dsu rollout retry`: operator control of a rollout (the `rollout` scope).

const enc = encodeURIComponent;

/** `dsu rollout abort <id> --reason R`: ends a requested or running rollout as `aborted`. */
async function rolloutAbortBody(id: string, opts: { reason: string }, out: Output): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const r = await gw.request<AbortedRollout>('POST', `/rollouts/${enc(id)}/abort`, { reason: opts.reason });
  out.log(
    `rollout   ${r.rolloutId} aborted: ${r.abortedTargets} open process(es) left as they are` +
      (r.abandonedPatches.length ? `, ${r.abandonedPatches.length} patch request(s) abandoned` : '') +
      `; start it over with 'dsu rollout retry ${r.rolloutId}'`,
  );
  out.result(r);
  return 0;
}

/** `dsu rollout retry <id> [--allow-empty]`: a new rollout to the same version, waited for like `dsu rollout`. */
async function rolloutRetryBody(id: string, opts: { allowEmpty?: boolean }, out: Output): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const old = await gw.request<RolloutView>('GET', `/rollouts/${enc(id)}`);
  const { rolloutId } = await gw.request<RolloutRequestView>('POST', `/rollouts/${enc(id)}/retry`);
  out.progress(`rollout   ${rolloutId}: retry of ${id} -> ${old.version} ...`);
  return awaitRollout(gw, rolloutId, old.version, out, opts);
}

export const rolloutAbortCommand = guarded(rolloutAbortBody);
export const rolloutRetryCommand = guarded(rolloutRetryBody);
