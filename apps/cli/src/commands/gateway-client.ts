import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, codeOfStatus } from '../errors';

/**
 * The API token the CLI sends: `DSU_TOKEN`, else the file `DSU_TOKEN_FILE` or `$DSU_HOME/token`
 * (where `dsu up` writes its user's admin token; the same path as libs/access localTokenPath,
 * repeated here so remote commands start without loading TypeORM). Undefined when there is none.
 */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DSU_TOKEN) return env.DSU_TOKEN.trim();
  const file = env.DSU_TOKEN_FILE || join(env.DSU_HOME ?? join(homedir(), '.dsu'), 'token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the token file ${file}: ${(err as Error).message}`);
  }
}

/** A small client of the gateway's HTTP API (the remote side of the CLI). */
export class GatewayClient {
  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): GatewayClient {
    return new GatewayClient(
      (env.DSU_GATEWAY || `http://127.0.0.1:${env.DSU_GATEWAY_PORT || 7400}`).replace(/\/$/, ''),
      tokenFromEnv(env),
    );
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await this.fetch(method, path, body, headers);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text for the error message
    }
    if (!res.ok) {
      const body = parsed as { error?: unknown; message?: unknown; code?: unknown } | null;
      const why = body?.error ?? body?.message ?? text;
      const hint =
        res.status === 401 && !this.token
          ? " (no token: set DSU_TOKEN, or run 'dsu up' with the same DSU_HOME so it writes $DSU_HOME/token)"
          : '';
      // The registry names its refusals (program-not-found, version-exists, ...); else the status does.
      const code = typeof body?.code === 'string' ? body.code : codeOfStatus(res.status);
      throw new CliError(
        code,
        `gateway ${method} ${path}: HTTP ${res.status}: ${typeof why === 'string' ? why : JSON.stringify(why)}${hint}`,
      );
    }
    return parsed as T;
  }

  async download(path: string): Promise<Buffer> {
    const res = await this.fetch('GET', path);
    if (!res.ok)
      throw new CliError(
        codeOfStatus(res.status),
        `gateway GET ${path}: HTTP ${res.status}: ${await res.text()}`,
      );
    return Buffer.from(await res.arrayBuffer());
  }

  private async fetch(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const init: RequestInit = {
      method,
      headers: { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...headers },
    };
    if (Buffer.isBuffer(body)) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    try {
      return await fetch(this.url + path, init);
    } catch (err) {
      throw new CliError(
        'gateway-unreachable',
        `no gateway answers at ${this.url} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}); start one with 'dsu up' or set DSU_GATEWAY`,
      );
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `fn` until it returns a value, or fails after `timeoutMs` saying what it waited for;
 * `interval` is a fixed wait in ms, or gives the next wait each time (a growing poll).
 */
export async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
  interval: number | (() => number) = 150,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new CliError('timeout', `gave up after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(typeof interval === 'number' ? interval : interval());
  }
}
