// workerpool's threading shape, which the update tests rely on: an `acceptor` thread and four named
// workers; up to four connections served at once; SLEEP keeps handle_request active on a worker.
import * as fs from 'node:fs';
import {
  buildFixture,
  fixtureCompiler,
  makeTempDir,
  removeDir,
  startServer,
  stopAllServers,
  type BuiltFixture,
} from './support/fixtures';
import { LineClient } from './support/line-client';

// Created in beforeAll (not at load: a fully filtered-out file runs no afterAll to remove it).
let outDir = '';
let wp: BuiltFixture;

beforeAll(async () => {
  outDir = makeTempDir('dsu-e2e-wp-');
  wp = await buildFixture('workerpool', 'v1', { cc: fixtureCompiler(), outDir });
}, 120_000);

afterAll(async () => {
  await stopAllServers();
  if (outDir) removeDir(outDir);
});

function threadNames(pid: number): string[] {
  return fs
    .readdirSync(`/proc/${pid}/task`)
    .map((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim())
    .sort();
}

it('runs an acceptor and four named worker threads', async () => {
  const server = await startServer(wp.binary);
  try {
    expect(threadNames(server.pid)).toEqual([
      'acceptor',
      'worker-0',
      'worker-1',
      'worker-2',
      'worker-3',
      'workerpool',
    ]);
  } finally {
    expect(await server.stop()).toEqual({ code: 0, signal: null, killed: false });
  }
});

it('serves four connections concurrently and queues the fifth until one closes', async () => {
  const server = await startServer(wp.binary);
  const clients = await Promise.all([0, 1, 2, 3, 4].map(() => LineClient.connect(server.port)));
  try {
    const t0 = Date.now();
    const four = await Promise.all(clients.slice(0, 4).map((c) => c.request('SLEEP 400', 3000)));
    expect(four).toEqual(Array(4).fill('SLEPT 400'));
    expect(Date.now() - t0).toBeLessThan(1200); // in parallel, not 4 x 400 ms

    // All four workers are taken by open connections: the fifth gets no answer yet...
    const fifth = clients[4].request('PING', 3000);
    const early = await Promise.race([fifth, new Promise((r) => setTimeout(() => r('waiting'), 300))]);
    expect(early).toBe('waiting');
    // ...until a served connection closes and its worker picks the queued one.
    await clients[0].close();
    expect(await fifth).toBe('PONG');
  } finally {
    for (const c of clients) c.destroy();
    expect(await server.stop()).toEqual({ code: 0, signal: null, killed: false });
  }
});

it('exits 0 on SIGTERM while a worker is sleeping inside handle_request', async () => {
  const server = await startServer(wp.binary);
  const client = await LineClient.connect(server.port);
  try {
    const pending = client.request('SLEEP 500', 3000).catch((e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    expect(await server.stop()).toEqual({ code: 0, signal: null, killed: false });
    expect(Date.now() - t0).toBeLessThan(2000);
    // The reply may or may not be written before the worker sees the shutdown; either is fine.
    expect(await pending).toMatch(/^(SLEPT 500|connection closed by peer|socket error: .*)$/);
  } finally {
    client.destroy();
  }
});
