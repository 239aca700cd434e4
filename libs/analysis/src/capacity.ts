import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';

/** A struct that outgrows the room its running instances have: no update point can fix that. */
export function capacity(ctx: SafetyContext): Finding[] {
  return ctx.manifest.types
    .filter((t) => t.newSize > t.capacity)
    .map((t) => ({
      rule: 'capacity',
      severity: 'error' as const,
      location: t.name,
      message:
        `${t.name} grows to ${t.newSize} bytes, but running instances have room for ${t.capacity}; ` +
        `rebuild with more room (--slop '${t.name}=<bytes>') and restart once, or keep the type smaller`,
    }));
}
