/** Injection token of the gateway's access settings. */
export const GATEWAY_ACCESS = Symbol('GATEWAY_ACCESS');

/** How the gateway decides who may call it; from the environment (`gatewayAccessFromEnv`). */
export interface GatewayAccessConfig {
  /** `token` (default): GET endpoints need a `read` token too; `open`: anyone who reaches the port may read. */
  reads: 'open' | 'token';
  /** Host names (no port) requests may be addressed to; `*` in the list turns the check off. */
  allowedHosts: Set<string>;
  /** Origins (`scheme://host[:port]`) a browser request may come from, besides the gateway's own. */
  allowedOrigins: Set<string>;
}

const list = (raw: string | undefined) =>
  (raw ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);

/**
 * `DSU_GATEWAY_READS=open|token` (default token: the registry holds sources and executables),
 * `DSU_GATEWAY_ALLOWED_HOSTS` (added to localhost, 127.0.0.1, [::1] and `DSU_BIND`), and
 * `DSU_GATEWAY_ALLOWED_ORIGINS` (default none: no web page may call the gateway).
 */
export function gatewayAccessFromEnv(env: NodeJS.ProcessEnv = process.env): GatewayAccessConfig {
  const reads = env.DSU_GATEWAY_READS || 'token';
  if (reads !== 'open' && reads !== 'token')
    throw new Error(`DSU_GATEWAY_READS must be 'open' or 'token', got '${reads}'`);
  const hosts = new Set(['localhost', '127.0.0.1', '[::1]', ...list(env.DSU_GATEWAY_ALLOWED_HOSTS)]);
  const bind = env.DSU_BIND?.trim().toLowerCase();
  if (bind) hosts.add(bind.includes(':') && !bind.startsWith('[') ? `[${bind}]` : bind);
  const origins = new Set<string>();
  for (const o of list(env.DSU_GATEWAY_ALLOWED_ORIGINS)) {
    let url: URL;
    try {
      url = new URL(o);
    } catch {
      throw new Error(`DSU_GATEWAY_ALLOWED_ORIGINS: '${o}' is not an origin like https://ops.example.com`);
    }
    origins.add(url.origin);
  }
  return { reads, allowedHosts: hosts, allowedOrigins: origins };
}
