import type { IncomingHttpHeaders } from 'node:http';
import type { GatewayAccessConfig } from './gateway-access.config';

/** A refusal: the HTTP status and the `{ "error" }` text saying what to do. */
export interface Refusal {
  status: 400 | 401 | 403 | 415;
  error: string;
}

/** The host name of a Host header, without the port (`[::1]:7400` -> `[::1]`). */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0];
  return name.replace(/\.$/, '');
}

/**
 * DNS rebinding: a page on evil.example whose name later resolves to 127.0.0.1 talks to the
 * gateway as "same origin" but with `Host: evil.example`; only names the gateway is known by pass.
 */
export function checkHost(headers: IncomingHttpHeaders, cfg: GatewayAccessConfig): Refusal | null {
  if (cfg.allowedHosts.has('*')) return null;
  const host = headers.host;
  if (!host) return { status: 400, error: 'the request has no Host header' };
  if (cfg.allowedHosts.has(hostName(host))) return null;
  return {
    status: 403,
    error: `Host '${hostName(host)}' is not a name of this gateway (DNS rebinding protection); call it as localhost or 127.0.0.1, or add the name to DSU_GATEWAY_ALLOWED_HOSTS`,
  };
}

/**
 * Browsers send `Origin` with every cross-origin request (and with same-origin writes); tools such
 * as the CLI send none. A request from a page that is neither the gateway itself (its /docs UI)
 * nor an allowed origin is refused before anything runs.
 */
export function checkOrigin(headers: IncomingHttpHeaders, cfg: GatewayAccessConfig): Refusal | null {
  const origin = headers.origin;
  if (origin === undefined) return null;
  if (cfg.allowedOrigins.has(origin.toLowerCase())) return null;
  try {
    if (origin !== 'null' && new URL(origin).host === (headers.host ?? '').toLowerCase()) return null;
  } catch {
    // not a URL: refused below
  }
  return {
    status: 403,
    error: `requests from the web page origin '${origin}' are refused; to let a web UI call the gateway, add its origin to DSU_GATEWAY_ALLOWED_ORIGINS`,
  };
}

const hasBody = (h: IncomingHttpHeaders) =>
  h['transfer-encoding'] !== undefined || Number(h['content-length'] ?? 0) > 0;

/**
 * Strict Content-Type: a route takes exactly one media type (`consumes`), or no body. This is
 * what turns away a CORS "simple request" (text/plain, form posts) before it can do anything.
 */
export function checkContentType(headers: IncomingHttpHeaders, consumes: string | undefined): Refusal | null {
  const type = (headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (consumes === undefined) {
    if (!hasBody(headers)) return null;
    return { status: 415, error: 'this endpoint takes no request body; send the request without one' };
  }
  if (type === consumes) return null;
  return {
    status: 415,
    error: `this endpoint takes ${consumes}, not ${type || 'a body without Content-Type'}; send the body with 'Content-Type: ${consumes}'`,
  };
}
