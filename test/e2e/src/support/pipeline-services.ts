// Runs the pipeline's services as real processes (the apps' built main.js, or `dsu up`) and
// waits until they are consuming.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../../../..');
export const DSU_JS = path.join(ROOT, 'apps/cli/bin/dsu.js');

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  log(): string;
  /** SIGTERM (graceful) or SIGKILL (crash); resolves when the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ServiceProcess>();
/** The admin token of each gateway this suite started, by its port (what `getJson` sends). */
const gatewayTokens = new Map<string, string>();

/**
 * The admin token a gateway (`dsu up` or the gateway app) wrote for its user on first start:
 * `DSU_TOKEN_FILE`, else `$DSU_HOME/token` of the environment it was started with.
 */
export function localToken(env: NodeJS.ProcessEnv): string {
  const file = env.DSU_TOKEN_FILE || path.join(env.DSU_HOME as string, 'token');
  return fs.readFileSync(file, 'utf8').trim();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Where a `dsu up` on the embedded default (in-process bus, SQLite) lives, and its environment. */
export interface EmbeddedUp {
  port: number;
  gateway: string;
  home: string;
  runDir: string;
  env: Record<string, string>;
}

/**
 * A fresh port and, under `work`, DSU_HOME `home<suffix>` and a 0700 run directory
 * `run<suffix>` for a `dsu up` reporting as host `hostId` with no Kafka and no PostgreSQL.
 */
export async function embeddedUp(
  work: string,
  hostId: string,
  opts: { suffix?: string; heartbeatMs?: number } = {},
): Promise<EmbeddedUp> {
  const port = await freePort();
  const home = path.join(work, `home${opts.suffix ?? ''}`);
  const runDir = path.join(work, `run${opts.suffix ?? ''}`);
  fs.mkdirSync(runDir, { mode: 0o700, recursive: true });
  const env: Record<string, string> = {
    DSU_HOME: home,
    DSU_RUN_DIR: runDir,
    DSU_GATEWAY_PORT: String(port),
    DSU_HOST_ID: hostId,
    ...(opts.heartbeatMs ? { DSU_HEARTBEAT_MS: String(opts.heartbeatMs) } : {}),
    KAFKA_BROKERS: '',
    DATABASE_URL: '',
  };
  return { port, gateway: `http://127.0.0.1:${port}`, home, runDir, env };
}

/**
 * Starts one service app (`apps/<name>/dist/main.js`) or `dsu up` (name 'up'), logging to
 * `<logDir>/<label>.log`, and resolves once it logged 'services started'.
 */
export async function startService(
  name: string,
  env: NodeJS.ProcessEnv,
  logDir: string,
  label = name,
  timeoutMs = 90_000,
): Promise<ServiceProcess> {
  const args = name === 'up' ? [DSU_JS, 'up', '--json'] : [path.join(ROOT, 'apps', name, 'dist', 'main.js')];
  const logFile = path.join(logDir, `${label}.log`);
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const log = () => fs.readFileSync(logFile, 'utf8');
  let exited = false;
  const gone = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  const svc: ServiceProcess = {
    name,
    child,
    logFile,
    log,
    stop: async (signal = 'SIGTERM') => {
      running.delete(svc);
      if (!exited) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(t);
    },
  };
  running.add(svc);
  const deadline = Date.now() + timeoutMs;
  while (!log().includes('"services started"')) {
    if (exited) throw new Error(`${label} exited before it started:\n${log().slice(-3000)}`);
    if (Date.now() > deadline)
      throw new Error(`${label} did not start within ${timeoutMs} ms:\n${log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if ((name === 'up' || name === 'gateway') && env.DSU_GATEWAY_PORT) {
    // The gateway writes its user's token after its services start, before it listens (the app
    // logs 'listening'; `dsu up --json` prints its one JSON object with the url).
    while (!/"msg":"listening"|^\{"url":/m.test(log())) {
      if (exited) throw new Error(`${label} exited before it listened:\n${log().slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`${label} did not listen within ${timeoutMs} ms:\n${log().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    gatewayTokens.set(env.DSU_GATEWAY_PORT, localToken(env));
  }
  return svc;
}

export async function stopAllServices(): Promise<void> {
  await Promise.all([...running].map((s) => s.stop()));
}

/** The last log lines of every running service (what a timed-out wait needs to be understood). */
function serviceLogTails(lines = 12): string {
  return [...running]
    .map((s) => {
      let text = '';
      try {
        text = s.log();
      } catch {
        text = '(no log)';
      }
      return `--- ${path.basename(s.logFile)} ---\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
    })
    .join('\n');
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${serviceLogTails()}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** GET as a user with the gateway's admin token (of a gateway this suite started), unless `token` is given. */
export async function getJson<T>(url: string, token?: string): Promise<T> {
  return JSON.parse(await getText(url, token)) as T;
}

/** Like `getJson`, for a body that is not JSON (the Prometheus scrape of `/metrics`). */
export async function getText(url: string, token?: string): Promise<string> {
  const bearer = token ?? gatewayTokens.get(new URL(url).port);
  const res = await fetch(url, { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${await res.text()}`);
  return res.text();
}
