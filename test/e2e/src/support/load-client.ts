// Loopback load generator: N concurrent line-protocol clients sending a scripted mix of requests
// for a bounded duration and/or count, checking every reply. Counts:
//   ok      reply accepted by the step's expectation
//   failed  connect error, reset/close, or timeout (the request got no reply)
//   wrong   a reply arrived but the expectation rejected it (or an unsolicited line arrived)
import { LineClient, LineClientError } from './line-client';

/**
 * What a reply may be. Plain data so that scripts can live in tables:
 * - a string: exactly this reply;
 * - an array: any one of these (e.g. the old and the new version's answer during an update);
 * - `{ regex }`: the whole reply matches this regular expression;
 * - `{ anyOf }`: any of several expectations;
 * - a predicate function, for tests that need code.
 * Strings and regexes may contain `{c}` (client index) and `{i}` (request sequence number of that
 * client), substituted before matching — the same placeholders work in `send`.
 */
export type Expectation =
  | string
  | readonly string[]
  | { regex: string }
  | { anyOf: readonly Expectation[] }
  | ((reply: string) => boolean);

export interface ScriptStep {
  send: string;
  expect: Expectation;
}

export interface LoadOptions {
  port: number;
  host?: string;
  /** Clients that keep one connection open (reconnecting only after a failure). */
  clients: number;
  /** Additional clients that open a new connection every `requestsPerConnection` requests. */
  reconnectingClients?: number;
  requestsPerConnection?: number;
  /** The request mix: each client walks it cyclically from step 0 (timing interleaves the clients). */
  script: readonly ScriptStep[];
  /** Stop after this long (ms). At least one of durationMs / requestsPerClient is required. */
  durationMs?: number;
  /** Stop each client after this many requests. */
  requestsPerClient?: number;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Pause after a failure before reconnecting (ms). */
  retryDelayMs?: number;
  /** Upper bound on kept samples of wrong replies / failures (for diagnostics). */
  maxSamples?: number;
}

export interface LoadResult {
  ok: number;
  failed: number;
  wrong: number;
  connections: number;
  durationMs: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  wrongSamples: Array<{ client: number; send: string; reply: string }>;
  failureSamples: Array<{ client: number; send: string; error: string }>;
}

export interface LoadRun {
  /** Ask all clients to finish their current request and stop; resolves with the totals. */
  stop(): Promise<LoadResult>;
  /** Resolves when the run ends (bound reached or stop()). */
  done: Promise<LoadResult>;
  /** Current counts, while running. */
  counts(): { ok: number; failed: number; wrong: number };
}

function substitute(s: string, client: number, seq: number): string {
  return s.replace(/\{c\}/g, String(client)).replace(/\{i\}/g, String(seq));
}

export function matches(expect: Expectation, reply: string, client = 0, seq = 0): boolean {
  if (typeof expect === 'function') return expect(reply);
  if (typeof expect === 'string') return reply === substitute(expect, client, seq);
  if (Array.isArray(expect)) return expect.some((e: string) => reply === substitute(e, client, seq));
  const obj = expect as { regex?: string; anyOf?: readonly Expectation[] };
  if (obj.anyOf) return obj.anyOf.some((e) => matches(e, reply, client, seq));
  if (obj.regex !== undefined) return new RegExp(`^(?:${substitute(obj.regex, client, seq)})$`).test(reply);
  throw new Error(`bad expectation ${JSON.stringify(expect)}`);
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function startLoad(opts: LoadOptions): LoadRun {
  if (opts.durationMs === undefined && opts.requestsPerClient === undefined)
    throw new Error('startLoad: give durationMs and/or requestsPerClient');
  if (opts.script.length === 0) throw new Error('startLoad: empty script');
  const host = opts.host ?? '127.0.0.1';
  const requestTimeoutMs = opts.requestTimeoutMs ?? 2000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
  const retryDelayMs = opts.retryDelayMs ?? 20;
  const perConn = Math.max(1, opts.requestsPerConnection ?? 5);
  const maxSamples = opts.maxSamples ?? 20;
  // Hard bound even for count-only runs: no client can run longer than this.
  const hardMs = opts.durationMs ?? 120_000;
  const started = Date.now();
  const deadline = started + hardMs;
  const limit = opts.requestsPerClient ?? Number.POSITIVE_INFINITY;
  const MAX_LATENCIES = 200_000;

  let stopped = false;
  const totals = { ok: 0, failed: 0, wrong: 0 };
  let connections = 0;
  const latencies: number[] = [];
  let latencySum = 0;
  let latencyCount = 0;
  const wrongSamples: LoadResult['wrongSamples'] = [];
  const failureSamples: LoadResult['failureSamples'] = [];
  const live = new Set<LineClient>();

  const active = () => !stopped && Date.now() < deadline;

  const recordFailure = (client: number, send: string, err: unknown) => {
    totals.failed++;
    if (failureSamples.length < maxSamples)
      failureSamples.push({ client, send, error: err instanceof Error ? err.message : String(err) });
  };

  async function runClient(index: number, reconnecting: boolean): Promise<void> {
    let conn: LineClient | undefined;
    let onThisConn = 0;
    let seq = 0;
    try {
      while (active() && seq < limit) {
        const step = opts.script[seq % opts.script.length];
        const send = substitute(step.send, index, seq);
        if (!conn || conn.closed || (reconnecting && onThisConn >= perConn)) {
          if (conn) {
            live.delete(conn);
            await conn.close();
          }
          conn = undefined;
          try {
            conn = await LineClient.connect(opts.port, host, connectTimeoutMs);
            live.add(conn);
            connections++;
            onThisConn = 0;
          } catch (err) {
            recordFailure(index, send, err);
            seq++;
            await delay(retryDelayMs);
            continue;
          }
        }
        const t0 = process.hrtime.bigint();
        try {
          const reply = await conn.request(send, requestTimeoutMs);
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          latencySum += ms;
          latencyCount++;
          if (latencies.length < MAX_LATENCIES) latencies.push(ms);
          if (matches(step.expect, reply, index, seq)) totals.ok++;
          else {
            totals.wrong++;
            if (wrongSamples.length < maxSamples) wrongSamples.push({ client: index, send, reply });
          }
          if (conn.unsolicited.length > 0) {
            totals.wrong += conn.unsolicited.length;
            for (const line of conn.unsolicited.splice(0))
              if (wrongSamples.length < maxSamples)
                wrongSamples.push({ client: index, send: '(none)', reply: line });
          }
        } catch (err) {
          recordFailure(index, send, err);
          if (!(err instanceof LineClientError)) throw err;
          live.delete(conn);
          conn.destroy();
          conn = undefined;
          await delay(retryDelayMs);
        }
        seq++;
        onThisConn++;
      }
    } finally {
      if (conn) {
        live.delete(conn);
        await conn.close();
      }
    }
  }

  const tasks: Promise<void>[] = [];
  for (let i = 0; i < opts.clients; i++) tasks.push(runClient(i, false));
  for (let i = 0; i < (opts.reconnectingClients ?? 0); i++) tasks.push(runClient(opts.clients + i, true));

  // A timer that ends the run at the deadline even if every client is waiting on a request.
  const endTimer = setTimeout(() => {
    stopped = true;
  }, hardMs);

  const done = Promise.all(tasks).then((): LoadResult => {
    clearTimeout(endTimer);
    const sorted = latencies.slice().sort((a, b) => a - b);
    return {
      ...totals,
      connections,
      durationMs: Date.now() - started,
      latencyMs: {
        p50: percentile(sorted, 50),
        p90: percentile(sorted, 90),
        p99: percentile(sorted, 99),
        max: sorted.length ? sorted[sorted.length - 1] : 0,
        mean: latencyCount ? latencySum / latencyCount : 0,
      },
      wrongSamples,
      failureSamples,
    };
  });

  return {
    stop() {
      stopped = true;
      return done;
    },
    done,
    counts: () => ({ ...totals }),
  };
}

/** Run a bounded load to completion. */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  return startLoad(opts).done;
}
