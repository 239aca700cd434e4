import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkSafety } from '@dsu/analysis';
import type { ProgramModel } from '@dsu/c-frontend';
import { readBundle } from '@dsu/control-client';
import type { Finding, SafetyVerdict } from '@dsu/patch-format';

export interface BundleCheck extends SafetyVerdict {
  patchId: string | null;
}

const noPoints: SafetyVerdict['updatePoints'] = { allowed: [], denied: [] };

/**
 * The checks of `dsu check` on a bundle directory: integrity (schema, patch.so hash, patch id),
 * that it changes something, then the safety analysis over the two program models the bundle
 * carries (activeness, con-freeness, version consistency, structural rules) with the update
 * points it allows. The same function serves the CLI and the checker service, so they agree.
 */
export function checkBundle(dir: string): BundleCheck {
  const findings: Finding[] = [];
  let patchId: string | null = null;
  let updatePoints = noPoints;
  try {
    const { manifest } = readBundle(dir);
    patchId = manifest.patchId;
    if (manifest.functions.length === 0)
      findings.push({ rule: 'empty-patch', severity: 'error', message: 'the patch changes no function' });
    const models = join(dir, 'models');
    if (!existsSync(join(models, 'from.json')) || !existsSync(join(models, 'to.json')))
      throw new Error(
        `the bundle has no program models (models/from.json, models/to.json), so its safety cannot be judged; generate it again with dsu patch`,
      );
    const load = (f: string) => JSON.parse(readFileSync(join(models, f), 'utf8')) as ProgramModel;
    const safety = checkSafety({ from: load('from.json'), to: load('to.json'), manifest });
    findings.push(...safety.findings, ...pointsOfBundle(manifest.allowedUpdatePoints, safety.updatePoints));
    updatePoints = safety.updatePoints;
  } catch (err) {
    findings.push({ rule: 'bundle-integrity', severity: 'error', message: (err as Error).message });
  }
  return {
    patchId,
    verdict: findings.some((f) => f.severity === 'error') ? 'rejected' : 'approved',
    findings,
    updatePoints,
  };
}

/**
 * The bundle's own list of update points (compiled into its descriptor by dsu patch) must be
 * within what the analysis allows: a list left empty means "any point" to the runtime.
 */
function pointsOfBundle(listed: string[], judged: SafetyVerdict['updatePoints']): Finding[] {
  if (listed.length === 0 && judged.denied.length > 0 && judged.allowed.length > 0)
    return [
      {
        rule: 'bundle-integrity',
        severity: 'error',
        message: `the bundle lets the runtime apply it at any update point, but ${judged.denied.map((d) => `'${d.name}'`).join(', ')} are unsafe; generate it again with this dsu patch`,
      },
    ];
  const denied = new Set(judged.denied.map((d) => d.name));
  const extra = listed.filter((p) => denied.has(p));
  return extra.length
    ? [
        {
          rule: 'bundle-integrity',
          severity: 'error',
          updatePoints: extra,
          message: `the bundle allows update points the analysis denies (${extra.join(', ')}); generate it again with dsu patch`,
        },
      ]
    : [];
}
