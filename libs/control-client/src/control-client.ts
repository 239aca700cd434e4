import { createConnection, Socket } from 'node:net';
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ControlError, Hello, PROTOCOL_VERSION, Stacks, Staged, Status, UpdateResult } from './protocol';

/** `$DSU_RUN_DIR`, else the runtime's default `/tmp/dsu-<euid>`. */
export function defaultRunDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DSU_RUN_DIR ?? `/tmp/dsu-${process.geteuid?.() ?? 0}`;
}

export function socketPath(pid: number, runDir = defaultRunDir()): string {
  return join(runDir, `${pid}.sock`);
}

/**
 * One connection to a process's control socket. Requests are sent one at a time; each gets
 * one JSON line back. COMMIT and ROLLBACK replies arrive when the update's outcome is known.
 */
export class ControlClient {
  private buffered = '';
  private waiting?: { resolve: (line: string) => void; reject: (err: Error) => void };
  private closedError?: Error;
  /** Closed with nobody waiting: the error is made if a request comes after all. */
  private closedQuietly?: true;

  private constructor(
    private readonly socket: Socket,
    readonly pid: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      const nl = this.buffered.indexOf('\n');
      if (nl >= 0 && this.waiting) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(line);
      }
    });
    const fail = (err: Error) => {
      this.closedError ??= err;
      this.waiting?.reject(err);
      this.waiting = undefined;
    };
    socket.on('error', fail);
    // Built only when needed: a thousand closes each capturing a stack showed up in `dsu apply --all`.
    socket.on('close', () => {
      if (this.waiting) fail(this.closedMessage());
      else this.closedQuietly ??= true;
    });
  }

  /** Connects to the control socket of `pid` (in `runDir`). */
  static connect(pid: number, runDir = defaultRunDir(), timeoutMs = 5000): Promise<ControlClient> {
    const path = socketPath(pid, runDir);
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ControlError(`no answer from ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new ControlClient(socket, pid));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why =
          err.code === 'ENOENT'
            ? `process ${pid} has no control socket at ${path}: is it running, built with dsu-cc, and is DSU_RUN_DIR the same?`
            : err.code === 'ECONNREFUSED'
              ? `process ${pid} is not listening on ${path} (it has exited?)`
              : `cannot connect to ${path}: ${err.message}`;
        reject(new ControlError(why));
      });
    });
  }

  /** Sends one request line and returns the parsed reply (whatever its `ok`). */
  async request(line: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    if (/[\r\n]/.test(line)) throw new ControlError('a request is one line; it must not contain line breaks');
    if (this.closedError) throw this.closedError;
    if (this.closedQuietly) throw this.closedMessage();
    if (this.waiting) throw new ControlError('one request at a time on a control connection');
    const reply = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new ControlError(`process ${this.pid} did not answer '${line.split(' ')[0]}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
    this.socket.write(line + '\n');
    const text = await reply;
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new ControlError(`process ${this.pid} sent a reply that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  private closedMessage(): ControlError {
    return new ControlError(`process ${this.pid} closed its control connection`);
  }

  private async expectOk<T>(line: string, timeoutMs?: number): Promise<T> {
    const r = await this.request(line, timeoutMs);
    if (r.ok !== true) throw new ControlError(String(r.error ?? `'${line}' failed`), r);
    return r as T;
  }

  async hello(): Promise<Hello> {
    const h = await this.expectOk<Hello>('HELLO');
    if (h.protocol !== PROTOCOL_VERSION) {
      throw new ControlError(`process ${this.pid} speaks control protocol ${h.protocol}; this dsu speaks ${PROTOCOL_VERSION}`);
    }
    return h;
  }

  status(): Promise<Status> {
    return this.expectOk<Status>('STATUS');
  }

  stacks(): Promise<Stacks> {
    return this.expectOk<Stacks>('STACKS');
  }

  /** Loads a patch off the critical path; a refusal comes back as an UpdateResult. */
  async stage(soPath: string, soSha256: string, patchId: string): Promise<Staged | UpdateResult> {
    if (/\s/.test(soPath)) throw new ControlError(`the patch path '${soPath}' contains whitespace; move the bundle to a path without spaces`);
    const r = await this.request(`STAGE ${soPath} ${soSha256} ${patchId}`, 60_000);
    if (r.ok === true) return r as unknown as Staged;
    return { ok: false, outcome: 'refused', pauseUs: 0, updatePoint: null, reasons: [String(r.error)], error: String(r.error) };
  }

  /** Arms the staged patch; resolves with the outcome once the update happened or gave up. */
  commit(timeoutMs: number): Promise<UpdateResult> {
    return this.update('COMMIT', timeoutMs);
  }

  rollback(timeoutMs: number): Promise<UpdateResult> {
    return this.update('ROLLBACK', timeoutMs);
  }

  private async update(verb: 'COMMIT' | 'ROLLBACK', timeoutMs: number): Promise<UpdateResult> {
    const r = await this.request(`${verb} ${Math.max(1, Math.round(timeoutMs))}`, timeoutMs + 10_000);
    if (typeof r.outcome !== 'string') throw new ControlError(String(r.error ?? `${verb} got an unexpected reply`), r);
    return { reasons: [], pauseUs: 0, updatePoint: null, ...(r as object) } as unknown as UpdateResult;
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}

/** Runs `fn` with a connection to `pid`, closing it afterwards. */
export async function withControl<T>(pid: number, runDir: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const c = await ControlClient.connect(pid, runDir);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` on every item with at most `limit` calls in flight; the results keep the items' order.
 * What the applier and `dsu apply` use to talk to many processes of a host at once.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** The pids whose control sockets are in `runDir`; sockets of processes that no longer exist are removed. */
export function listPids(runDir = defaultRunDir()): number[] {
  if (!existsSync(runDir)) return [];
  const pids = readdirSync(runDir)
    .map((f) => /^(\d+)\.sock$/.exec(f)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  return pids.filter((pid) => {
    if (processAlive(pid)) return true;
    try {
      unlinkSync(socketPath(pid, runDir));
    } catch {
      // already gone
    }
    return false;
  });
}

/**
 * The STATUS of every DSU-enabled process in `runDir`, `concurrency` at a time, one connection
 * each (STATUS carries all HELLO says). Processes that do not answer, or speak another protocol
 * version, are left out: a later call sees them again.
 */
export async function statusAll(runDir = defaultRunDir(), concurrency = 16): Promise<Status[]> {
  const all = await mapLimit(listPids(runDir), concurrency, async (pid) => {
    try {
      const s = await withControl(pid, runDir, (c) => c.status());
      return s.protocol === PROTOCOL_VERSION ? s : undefined;
    } catch {
      return undefined; // exited or busy: the next call sees it again
    }
  });
  return all.filter((s): s is Status => s !== undefined);
}

/**
 * The DSU-enabled processes whose sockets are in `runDir`, with their HELLO. Sockets left
 * behind by processes that no longer exist are removed.
 */
export async function listProcesses(runDir = defaultRunDir()): Promise<Hello[]> {
  const found: Hello[] = [];
  for (const pid of listPids(runDir)) {
    try {
      found.push(await withControl(pid, runDir, (c) => c.hello()));
    } catch {
      // alive but not answering (busy with another client, or not ours): leave it out
    }
  }
  return found;
}
