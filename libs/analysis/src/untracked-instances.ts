import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';

/**
 * Instances of a changed type that the runtime cannot find: memory from allocators it does not
 * track (wrappers such as `xmalloc`, pools, mmap) and instances inside unions. Transforming the
 * others and leaving these in the old layout crashes the program later, so this is an error.
 */
export function untrackedInstances(ctx: SafetyContext): Finding[] {
  const findings: Finding[] = [];
  for (const t of ctx.manifest.types) {
    const old = ctx.from.types[t.name];
    for (const src of old?.untrackedSources ?? [])
      findings.push({
        rule: 'untracked-instances',
        severity: 'error',
        location: t.name,
        message:
          `${src}; those instances would stay in the old layout while the patch changes it. Allocate them ` +
          `with malloc/calloc/realloc where the type is known (malloc(sizeof *p)), e.g. make the wrapper a macro ` +
          `or a static inline function, or keep the layout of ${t.name} unchanged`,
      });
    for (const u of Object.values(ctx.from.types))
      if (u.kind === 'union' && u.fields.some((f) => f.type === t.name))
        findings.push({
          rule: 'untracked-instances',
          severity: 'error',
          location: `${u.key}.${u.fields.find((f) => f.type === t.name)?.name}`,
          message: `${t.name} is a member of ${u.key}; instances inside the union cannot be found and transformed`,
        });
  }
  return findings;
}
