import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { LineQueue } from './line-queue';

/**
 * A line server (prints `listening <port>`, serves one request line with one reply line) driven
 * over one loopback connection; the same interface as LineProcess.
 */
export class TcpLineProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private socket?: Socket;
  private readonly replies = new LineQueue();
  stderr = '';
  exit?: { code: number | null; signal: NodeJS.Signals | null };

  private constructor(exe: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(exe, ['0'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.replies.wake();
    });
  }

  /** Starts the server and connects to it. */
  static async start(exe: string, env: NodeJS.ProcessEnv): Promise<TcpLineProcess> {
    const p = new TcpLineProcess(exe, env);
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`${exe}: no "listening <port>" within 10 s: ${p.stderr}`)),
        10_000,
      );
      p.child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /^listening (\d+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    p.socket = createConnection({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      p.socket?.once('connect', () => resolve());
      p.socket?.once('error', reject);
    });
    p.socket.setEncoding('utf8');
    p.socket.on('data', (d: string) => p.replies.push(d));
    p.socket.on('error', () => p.replies.wake());
    p.socket.on('close', () => p.replies.wake());
    return p;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Sends one request and waits for its reply line; undefined when none comes in time or the server died. */
  async request(line: string, timeoutMs = 5000): Promise<string | undefined> {
    if (!this.exit && this.socket && !this.socket.destroyed) this.socket.write(line + '\n');
    return this.replies.next(timeoutMs, () => !this.exit && !this.socket?.destroyed);
  }

  /** Closes the connection and stops the server (SIGTERM, then SIGKILL if it lingers). */
  async stop(): Promise<void> {
    this.socket?.destroy();
    if (!this.exit) this.child.kill('SIGTERM');
    const deadline = Date.now() + 2000;
    while (!this.exit && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.exit) this.child.kill('SIGKILL');
  }
}
