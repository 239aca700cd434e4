/**
 * What a token may do. `read`: the GET endpoints (when reads need a token) and the audit log;
 * `submit`: register programs, submit versions, request patches; `rollout`: start, abort and retry rollouts;
 * `admin`: manage tokens, and implies every other scope.
 */
export const SCOPES = ['submit', 'rollout', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** True when a token with `granted` scopes may do what needs `needed`. */
export function grants(granted: readonly string[], needed: Scope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}

/** Parses `submit,rollout,read` (or an array); throws with the valid names on an unknown one. */
export function parseScopes(input: string | readonly unknown[]): Scope[] {
  const items = typeof input === 'string' ? input.split(',') : [...input];
  const out: Scope[] = [];
  for (const raw of items) {
    const s = typeof raw === 'string' ? raw.trim() : raw;
    if (s === '') continue;
    if (typeof s !== 'string' || !(SCOPES as readonly string[]).includes(s))
      throw new Error(`unknown scope '${String(s)}'; scopes are ${SCOPES.join(', ')}`);
    if (!out.includes(s as Scope)) out.push(s as Scope);
  }
  if (out.length === 0) throw new Error(`give at least one scope (${SCOPES.join(', ')})`);
  return out;
}
