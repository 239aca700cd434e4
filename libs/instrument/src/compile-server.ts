import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runDsuCc } from './dsu-cc';

/**
 * One dsu-cc process for a whole build. Starting node per compile step costs more than clang's
 * own work on a typical unit (and every step would run cold, un-JITed code), so `dsu build` serves
 * all the build's compile and link steps from one process: `bin/dsu-cc-client` (C, starts in about
 * a millisecond) forwards each step here over a Unix socket. The wire format is described in
 * client/dsu-cc-client.c.
 */
export interface CompileServer {
  /** The socket clients connect to (`DSU_CC_SOCKET`). */
  socketPath: string;
  /** Steps served so far. */
  readonly served: number;
  /** Stops accepting, waits for the steps in flight, removes the socket. */
  close(): Promise<void>;
}

const MAGIC = 'DSUCC1\n';
/** A request is a command line and an environment; anything bigger is not a compiler invocation. */
const MAX_REQUEST_BYTES = 64 * 1024 * 1024;

export interface CompileRequest {
  cwd: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/** Decodes a client request; throws saying what is malformed. */
export function decodeCompileRequest(raw: Buffer): CompileRequest {
  if (raw.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) throw new Error('not a dsu-cc request (bad magic or version)');
  const parts = raw.subarray(MAGIC.length).toString('utf8').split('\0');
  if (parts.pop() !== '') throw new Error('request is not NUL-terminated');
  let i = 0;
  const take = () => {
    if (i >= parts.length) throw new Error('request ends early');
    return parts[i++];
  };
  const count = () => {
    const n = Number(take());
    if (!Number.isInteger(n) || n < 0) throw new Error('bad count in request');
    return n;
  };
  const cwd = take();
  const argv = Array.from({ length: count() }, take);
  const env: NodeJS.ProcessEnv = {};
  for (let n = count(); n > 0; n--) {
    const kv = take();
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (i !== parts.length) throw new Error('trailing data in request');
  return { cwd, argv, env };
}

function frame(type: 'o' | 'e' | 'x', payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

function exitFrame(code: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(code >>> 0);
  return frame('x', b);
}

/** Absolute path of the compiled client, or undefined when it was not built (then use dsu-cc.js). */
export function compileClientPath(): string | undefined {
  const p = resolve(__dirname, '..', 'bin', 'dsu-cc-client');
  return existsSync(p) ? p : undefined;
}

/** Starts a compile server on a fresh socket in a private temporary directory. */
export async function startCompileServer(): Promise<CompileServer> {
  const dir = mkdtempSync(join(tmpdir(), 'dsu-cc-server-'));
  const socketPath = join(dir, 'cc.sock');
  const inFlight = new Set<Promise<void>>();
  let served = 0;

  const serve = (sock: Socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    sock.on('error', () => sock.destroy()); // the client died (e.g. make was interrupted): nothing to report to
    sock.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        sock.end(Buffer.concat([frame('e', Buffer.from('dsu-cc: request too large\n')), exitFrame(2)]));
        return;
      }
      chunks.push(c);
    });
    sock.on('end', () => {
      if (size > MAX_REQUEST_BYTES) return;
      const job = (async () => {
        let req: CompileRequest;
        try {
          req = decodeCompileRequest(Buffer.concat(chunks));
        } catch (err) {
          sock.end(Buffer.concat([frame('e', Buffer.from(`dsu-cc: ${(err as Error).message}\n`)), exitFrame(2)]));
          return;
        }
        const send = (type: 'o' | 'e', chunk: Buffer) => {
          if (!sock.destroyed) sock.write(frame(type, chunk));
        };
        const code = await runDsuCc(req.argv, {
          cwd: req.cwd,
          env: req.env,
          log: (line) => send('e', Buffer.from(line + '\n')),
          output: (stream, chunk) => send(stream === 'stdout' ? 'o' : 'e', chunk),
        }).catch((err: Error) => {
          send('e', Buffer.from(`dsu-cc: ${err.stack ?? err.message}\n`));
          return 1;
        });
        served++;
        if (!sock.destroyed) sock.end(exitFrame(code));
      })();
      inFlight.add(job);
      void job.finally(() => inFlight.delete(job));
    });
  };

  // Half-open: the client ends its side after the request and still reads the reply.
  const server: Server = createServer({ allowHalfOpen: true }, serve);
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(socketPath, () => res());
  });
  return {
    socketPath,
    get served() {
      return served;
    },
    async close() {
      await new Promise<void>((res) => server.close(() => res()));
      await Promise.all([...inFlight]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `dsu-cc --serve [--] <command...>`: runs a build command (make, cmake --build, ninja...) with one
 * compile server for all its steps; `CC` points at the client and `DSU_CC_SOCKET` at the server.
 * What `dsu build` does, for builds run by hand. Resolves to the command's exit code.
 */
export async function runWithCompileServer(command: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [cmd, ...args] = command[0] === '--' ? command.slice(1) : command;
  if (!cmd) throw new Error('usage: dsu-cc --serve [--] <build command...>  (e.g. dsu-cc --serve make -j2)');
  const client = compileClientPath();
  if (!client) throw new Error('bin/dsu-cc-client is not built; run `npx nx build instrument` (or npm run build) first');
  const server = await startCompileServer();
  try {
    return await new Promise<number>((res, rej) => {
      const child = spawn(cmd, args, { stdio: 'inherit', env: { ...env, CC: client, DSU_CC_SOCKET: server.socketPath } });
      child.on('error', (err) => rej(new Error(`cannot run '${cmd}': ${err.message}`)));
      child.on('close', (code, signal) => res(code ?? (signal ? 128 + 15 : 1)));
    });
  } finally {
    await server.close();
  }
}
