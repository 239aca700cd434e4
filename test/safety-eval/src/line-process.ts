import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { LineQueue } from './line-queue';

/** A program driven over its stdin and stdout, one reply line per request line. */
export class LineProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly replies = new LineQueue();
  stderr = '';
  exit?: { code: number | null; signal: NodeJS.Signals | null };

  constructor(exe: string, env: NodeJS.ProcessEnv) {
    this.child = spawn(exe, [], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d: string) => this.replies.push(d));
    this.child.stderr.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      this.replies.wake();
    });
    this.child.stdin.on('error', () => undefined); // a crashed program: reported by `exit`
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Sends one request and waits for its reply line; undefined when none comes in time or the program died. */
  async request(line: string, timeoutMs = 5000): Promise<string | undefined> {
    if (!this.exit) this.child.stdin.write(line + '\n');
    return this.replies.next(timeoutMs, () => !this.exit);
  }

  /** Ends the program (stdin closed, then SIGKILL if it lingers). */
  async stop(): Promise<void> {
    this.child.stdin.end();
    const deadline = Date.now() + 2000;
    while (!this.exit && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.exit) this.child.kill('SIGKILL');
  }
}
