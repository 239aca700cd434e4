import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removedButReferenced } from '@dsu/analysis';
import type { ProgramModel } from '@dsu/c-frontend';
import { readBundle } from '@dsu/control-client';
import type { Finding } from '@dsu/events';

export interface BundleCheck {
  patchId: string | null;
  verdict: 'approved' | 'rejected';
  findings: Finding[];
}

/**
 * The checks of `dsu check` on a bundle directory: integrity (schema, patch.so hash, patch id),
 * that it changes something, and removed functions still referenced by the new version. The same
 * rules as the CLI's local check, so the pipeline and the command agree on a verdict.
 */
export function checkBundle(dir: string): BundleCheck {
  const findings: Finding[] = [];
  let patchId: string | null = null;
  try {
    const { manifest } = readBundle(dir);
    patchId = manifest.patchId;
    if (manifest.functions.length === 0)
      findings.push({ rule: 'empty-patch', severity: 'error', message: 'the patch changes no function' });
    const models = join(dir, 'models');
    if (existsSync(join(models, 'from.json')) && existsSync(join(models, 'to.json'))) {
      const load = (f: string) => JSON.parse(readFileSync(join(models, f), 'utf8')) as ProgramModel;
      for (const f of removedButReferenced(load('from.json'), load('to.json')))
        findings.push({ rule: f.rule, severity: 'warning', message: f.message });
    }
  } catch (err) {
    findings.push({ rule: 'bundle-integrity', severity: 'error', message: (err as Error).message });
  }
  return {
    patchId,
    verdict: findings.some((f) => f.severity === 'error') ? 'rejected' : 'approved',
    findings,
  };
}
