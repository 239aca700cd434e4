// pollserver's single poll() loop serves many concurrent connections at once.
import {
  buildFixture,
  fixtureCompiler,
  makeTempDir,
  removeDir,
  startServer,
  stopAllServers,
} from './support/fixtures';
import { runLoad } from './support/load-client';

// Created in beforeAll (not at load: a fully filtered-out file runs no afterAll to remove it).
let outDir = '';

beforeAll(() => {
  outDir = makeTempDir('dsu-e2e-ps-');
});

afterAll(async () => {
  await stopAllServers();
  if (outDir) removeDir(outDir);
});

it('serves 200 concurrent persistent clients with no failed or wrong reply', async () => {
  const { binary } = await buildFixture('pollserver', 'v1', { cc: fixtureCompiler(), outDir });
  const server = await startServer(binary);
  try {
    const r = await runLoad({
      port: server.port,
      clients: 200,
      durationMs: 1500,
      requestTimeoutMs: 3000,
      script: [
        { send: 'SET c{c} {i}', expect: 'OK' },
        { send: 'GET c{c}', expect: (reply) => /^\d+$/.test(reply) },
        { send: 'PING', expect: 'PONG' },
      ],
    });
    expect({ failed: r.failed, wrong: r.wrong, samples: [...r.failureSamples, ...r.wrongSamples] }).toEqual({
      failed: 0,
      wrong: 0,
      samples: [],
    });
    expect(r.connections).toBe(200);
    expect(r.ok).toBeGreaterThan(1000);
  } finally {
    expect(await server.stop()).toEqual({ code: 0, signal: null, killed: false });
  }
}, 60_000);
