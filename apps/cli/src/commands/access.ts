import type { AuditView, TokenView } from '@dsu/access';
import type { Output } from '../output';
import { GatewayClient } from './gateway-client';
import { guarded } from './remote';

// Token management and the audit log: remote commands that talk to the gateway with an admin
// (tokens) or read (audit) token, found like every remote command's (DSU_TOKEN, $DSU_HOME/token).
// The views are the gateway's own types (type-only: the CLI does not load libs/access).

/** `dsu token create --name N --scopes submit,rollout,read`: prints the token, this once. */
export const tokenCreateCommand = guarded(
  async (opts: { name: string; scopes: string }, out: Output): Promise<number> => {
    const scopes = opts.scopes
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const t = await GatewayClient.fromEnv().request<TokenView & { token: string }>('POST', '/tokens', {
      name: opts.name,
      scopes,
    });
    out.log(`token ${t.id} '${t.name}' with scopes ${t.scopes.join(', ')}:`);
    out.log(t.token);
    out.log('it is shown this once (the gateway keeps only its hash): store it now, e.g. as DSU_TOKEN');
    out.result({ id: t.id, name: t.name, scopes: t.scopes, createdAt: t.createdAt, token: t.token });
    return 0;
  },
);

/** `dsu token list` */
export const tokenListCommand = guarded(async (out: Output): Promise<number> => {
  const list = await GatewayClient.fromEnv().request<TokenView[]>('GET', '/tokens');
  for (const t of list)
    out.log(
      `${t.id}  ${t.name.padEnd(20)} ${t.scopes.join(',').padEnd(22)} created ${t.createdAt}  last used ${t.lastUsedAt ?? 'never'}${t.revoked ? `  REVOKED ${t.revokedAt}` : ''}`,
    );
  if (list.length === 0) out.log('no tokens');
  out.result(list);
  return 0;
});

/** `dsu token revoke <id>` */
export const tokenRevokeCommand = guarded(async (id: string, out: Output): Promise<number> => {
  const r = await GatewayClient.fromEnv().request<{ id: string; name: string; revokedAt: string }>(
    'DELETE',
    `/tokens/${encodeURIComponent(id)}`,
  );
  out.log(`token ${r.id} '${r.name}' revoked at ${r.revokedAt}`);
  out.result(r);
  return 0;
});

/** `dsu audit [--program p] [--limit n]`: who submitted, approved, rolled out, managed tokens. */
export const auditCommand = guarded(
  async (opts: { program?: string; limit?: number }, out: Output): Promise<number> => {
    const q = new URLSearchParams();
    if (opts.program) q.set('program', opts.program);
    if (opts.limit) q.set('limit', String(opts.limit));
    const rows = await GatewayClient.fromEnv().request<AuditView[]>(
      'GET',
      `/audit${q.toString() ? `?${q}` : ''}`,
    );
    for (const a of rows)
      out.log(
        `${a.at}  ${a.action.padEnd(16)} ${(a.program ?? '-').padEnd(14)} ${(a.target ?? '-').padEnd(18)} ${a.outcome.padEnd(9)} by ${a.actor.name} (${a.actor.id})`,
      );
    if (rows.length === 0) out.log('no audit entries');
    out.result(rows);
    return 0;
  },
);
