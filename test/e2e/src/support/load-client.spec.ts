// The load client must count what it sees: a generator that cannot see failures proves nothing.
import * as net from 'node:net';
import { converse } from './line-client';
import { matches, runLoad, startLoad } from './load-client';

type Behaviour = (line: string, socket: net.Socket, served: number) => void;

async function withServer<T>(behaviour: Behaviour, body: (port: number) => Promise<T>): Promise<T> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = '';
    let served = 0;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        behaviour(line, socket, served++);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await body((server.address() as net.AddressInfo).port);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const echo: Behaviour = (line, socket) => socket.write(`${line}\n`);

describe('matches', () => {
  it('accepts exact strings, one-of lists, regexes, anyOf and predicates, with placeholders', () => {
    expect(matches('PONG', 'PONG')).toBe(true);
    expect(matches('PONG', 'PONG 3')).toBe(false);
    expect(matches(['PONG', 'PONG 3'], 'PONG 3')).toBe(true);
    expect(matches({ regex: '\\d+' }, '12')).toBe(true);
    expect(matches({ regex: '\\d+' }, '12x')).toBe(false);
    expect(matches({ anyOf: ['NOT_FOUND', 'NOT_FOUND k{c}'] }, 'NOT_FOUND k7', 7)).toBe(true);
    expect(matches('v{c}.{i}', 'v2.5', 2, 5)).toBe(true);
    expect(matches((r) => r.startsWith('sum'), 'sum = 1')).toBe(true);
  });
});

describe('load client', () => {
  it('counts correct replies as ok', async () => {
    const r = await withServer(echo, (port) =>
      runLoad({
        port,
        clients: 3,
        reconnectingClients: 2,
        requestsPerConnection: 3,
        requestsPerClient: 20,
        script: [{ send: 'A{c}.{i}', expect: 'A{c}.{i}' }],
      }),
    );
    expect(r).toMatchObject({ ok: 100, failed: 0, wrong: 0 });
    expect(r.connections).toBe(3 + 2 * 7);
    expect(r.latencyMs.p99).toBeGreaterThan(0);
  });

  it('counts unexpected replies as wrong and keeps samples', async () => {
    const r = await withServer(
      (line, socket, served) => socket.write(served % 2 ? 'BAD\n' : `${line}\n`),
      (port) => runLoad({ port, clients: 2, requestsPerClient: 10, script: [{ send: 'X', expect: 'X' }] }),
    );
    expect(r).toMatchObject({ ok: 10, wrong: 10, failed: 0 });
    expect(r.wrongSamples[0]).toEqual({ client: expect.any(Number), send: 'X', reply: 'BAD' });
  });

  it('counts resets and timeouts as failed, then reconnects', async () => {
    const r = await withServer(
      (line, socket, served) => {
        // Reset the connection on its 2nd request; answer every other request.
        if (served === 1) socket.destroy();
        else socket.write(`${line}\n`);
      },
      (port) =>
        runLoad({
          port,
          clients: 2,
          requestsPerClient: 6,
          requestTimeoutMs: 300,
          script: [{ send: 'Y', expect: 'Y' }],
        }),
    );
    expect(r).toMatchObject({ ok: 6, failed: 6, wrong: 0 });
    expect(r.connections).toBe(6);
  });

  it('times out a request that gets no reply', async () => {
    const r = await withServer(
      () => undefined,
      (port) =>
        runLoad({
          port,
          clients: 1,
          requestsPerClient: 2,
          requestTimeoutMs: 200,
          script: [{ send: 'Z', expect: 'Z' }],
        }),
    );
    expect(r).toMatchObject({ ok: 0, failed: 2, wrong: 0 });
    expect(r.failureSamples[0].error).toMatch(/no reply/);
  });

  it('counts connection refusals as failed and respects the duration bound', async () => {
    const port = await withServer(echo, async (p) => p); // closed again: nothing listens there now
    const t0 = Date.now();
    const r = await runLoad({
      port,
      clients: 2,
      durationMs: 300,
      retryDelayMs: 50,
      script: [{ send: 'Q', expect: 'Q' }],
    });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.ok).toBe(0);
    expect(r.failed).toBeGreaterThan(0);
  });

  it('stop() ends a running load', async () => {
    await withServer(echo, async (port) => {
      const run = startLoad({ port, clients: 4, durationMs: 60_000, script: [{ send: 'S', expect: 'S' }] });
      await new Promise((r) => setTimeout(r, 200));
      const t0 = Date.now();
      const r = await run.stop();
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(r.ok).toBeGreaterThan(0);
      expect(r.failed + r.wrong).toBe(0);
    });
  });

  it('converse returns replies in order', async () => {
    const replies = await withServer(echo, (port) => converse(port, ['a', 'b', '']));
    expect(replies).toEqual(['a', 'b', '']);
  });
});
