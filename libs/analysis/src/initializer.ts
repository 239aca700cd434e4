import type { Finding } from '@dsu/patch-format';
import type { SafetyContext } from './safety-context';

/**
 * A global whose initializer changes keeps its running value: the process initialized it long
 * ago. Reported with both initializers, so the reviewer can carry the new value with a state
 * transformer when the old one is wrong for the new code (a version string, a table).
 */
export function initializer(ctx: SafetyContext): Finding[] {
  return ctx.manifest.globals
    .filter((g) => g.change === 'initializer')
    .map((g) => {
      const was = ctx.from.globals[g.key]?.init;
      const now = ctx.to.globals[g.key]?.init;
      const values = was !== undefined && now !== undefined ? ` from ${was} to ${now}` : '';
      return {
        rule: 'initializer',
        severity: 'warning' as const,
        location: g.key,
        message:
          `the initializer of '${g.key}' changes${values}; the running process keeps its current value. ` +
          `Set the new value in patch.yaml's stateTransformer if the new code needs it`,
      };
    });
}
