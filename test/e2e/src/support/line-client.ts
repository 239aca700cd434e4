// One TCP connection speaking a line protocol: one request line, one reply line, each `\n`-terminated.
// Every operation has a timeout; nothing here waits forever.
import * as net from 'node:net';

export class LineClientError extends Error {
  constructor(
    message: string,
    readonly kind: 'connect' | 'timeout' | 'closed' | 'error' | 'unsolicited',
  ) {
    super(message);
    this.name = 'LineClientError';
  }
}

interface Pending {
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class LineClient {
  private buffer = '';
  private pending: Pending | undefined;
  private closedError: LineClientError | undefined;
  /** Reply lines that arrived while no request was outstanding. */
  readonly unsolicited: string[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new LineClientError(`socket error: ${err.message}`, 'error')));
    socket.on('close', () => this.fail(new LineClientError('connection closed by peer', 'closed')));
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 2000): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new LineClientError(`connect to ${host}:${port} timed out after ${timeoutMs} ms`, 'connect'));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new LineClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new LineClientError(`connect to ${host}:${port} failed: ${err.message}`, 'connect'));
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  /** Send one line (without `\n`) and resolve with the reply line (without `\n`). */
  request(line: string, timeoutMs = 2000): Promise<string> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.pending) return Promise.reject(new LineClientError('request already outstanding', 'error'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        const err = new LineClientError(
          `no reply to ${JSON.stringify(line)} within ${timeoutMs} ms`,
          'timeout',
        );
        // A late reply would desynchronise the conversation: this connection is done.
        this.fail(err);
        reject(err);
      }, timeoutMs);
      this.pending = { resolve, reject, timer };
      this.socket.write(`${line}\n`);
      this.drain();
    });
  }

  /** Close our side and wait (bounded) for the socket to be fully closed. */
  close(timeoutMs = 1000): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      const timer = setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    this.drain();
  }

  private drain(): void {
    let nl = this.buffer.indexOf('\n');
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const p = this.pending;
      if (p) {
        this.pending = undefined;
        clearTimeout(p.timer);
        p.resolve(line);
      } else {
        this.unsolicited.push(line);
      }
      nl = this.buffer.indexOf('\n');
    }
  }

  private fail(err: LineClientError): void {
    if (!this.closedError) this.closedError = err;
    const p = this.pending;
    if (p) {
      this.pending = undefined;
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.socket.destroy();
  }
}

/** Run a whole conversation on one fresh connection; returns the reply to each line. */
export async function converse(port: number, lines: readonly string[], timeoutMs = 2000): Promise<string[]> {
  const client = await LineClient.connect(port, '127.0.0.1', timeoutMs);
  try {
    const replies: string[] = [];
    for (const line of lines) replies.push(await client.request(line, timeoutMs));
    return replies;
  } finally {
    await client.close();
  }
}

/**
 * Write `chunks` as separate writes (pausing `gapMs` between them) on one connection and collect
 * `lines` reply lines: for pipelined requests and requests split across packets.
 */
export function rawExchange(
  port: number,
  chunks: readonly string[],
  lines: number,
  opts: { gapMs?: number; timeoutMs?: number } = {},
): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    let buf = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(buf.split('\n').slice(0, lines));
    };
    const timer = setTimeout(
      () => finish(new Error(`got ${buf.split('\n').length - 1} of ${lines} lines within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (d: string) => {
      buf += d;
      if (buf.split('\n').length - 1 >= lines) finish();
    });
    socket.on('error', (e) => finish(e));
    socket.on('close', () =>
      finish(new Error(`closed after ${buf.split('\n').length - 1} of ${lines} lines`)),
    );
    socket.once('connect', async () => {
      for (const chunk of chunks) {
        if (done) return;
        socket.write(chunk);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}
