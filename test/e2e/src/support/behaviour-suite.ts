// The behaviour suite of the fixture programs: every version of every fixture, built with the given
// compiler, behaves exactly as its table in ../specs says: scripted conversations with exact replies,
// a short concurrent load with no failed or wrong reply, and a clean exit on SIGTERM / SIGINT.
// Run once with the native compiler and once with dsu-cc, it proves instrumentation keeps behaviour.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  buildFixture,
  listVersions,
  makeTempDir,
  removeDir,
  startServer,
  stopAllServers,
  type BuiltFixture,
} from './fixtures';
import { converse, LineClient, rawExchange } from './line-client';
import { runLoad } from './load-client';
import { PROGRAM_SPECS } from '../specs';

/** `checkBuild` adds compiler-specific assertions on each build (e.g. that it was instrumented). */
export function fixtureBehaviourSuite(label: string, cc: string, checkBuild?: (b: BuiltFixture) => void): void {
  // Created in beforeAll (not at load: a fully filtered-out file runs no afterAll to remove it).
    let outDir = '';
    const builds = new Map<string, Promise<BuiltFixture>>();

  function built(program: string, version: string): Promise<BuiltFixture> {
    const key = `${program}/${version}`;
    let b = builds.get(key);
    if (!b) {
      b = buildFixture(program, version, { cc, outDir });
      builds.set(key, b);
    }
    return b;
  }

  beforeAll(async () => {
    outDir = makeTempDir(`dsu-e2e-${label.replace(/\W+/g, "-")}-`);
    // Build everything up front, two makes at a time (2 cores).
    const all = PROGRAM_SPECS.flatMap((p) => p.versions.map((v) => [p.program, v.version] as const));
    const queue = [...all];
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await built(next[0], next[1]);
    };
    await Promise.all([worker(), worker()]);
  }, 240_000);

  afterAll(async () => {
    await stopAllServers();
    if (outDir) removeDir(outDir);
  });

  describe.each(PROGRAM_SPECS.map((p) => [p.program, p] as const))(
    `%s (built with ${label})`,
    (program, spec) => {
      it('has a table for every version directory', () => {
        expect(spec.versions.map((v) => v.version)).toEqual(listVersions(program));
      });

      describe.each(spec.versions.map((v) => [v.version, v] as const))('%s', (version, vspec) => {
        it('builds with separate compile and link steps', async () => {
          const b = await built(program, version);
          const sources = fs.readdirSync(b.dir).filter((f) => f.endsWith('.c'));
          expect(sources.length).toBeGreaterThan(0);
          for (const c of sources) expect(fs.existsSync(path.join(b.dir, c.replace(/\.c$/, '.o')))).toBe(true);
          expect(b.log).toMatch(/ -c /);
          checkBuild?.(b);
        });

        it('answers the scripted conversations exactly and exits 0 on SIGTERM', async () => {
          const server = await startServer((await built(program, version)).binary);
          try {
            for (const conv of vspec.conversations) {
              const replies = await converse(
                server.port,
                conv.steps.map(([req]) => req),
              );
              const got = conv.steps.map(([req], i) => [req, replies[i]]);
              expect({ conversation: conv.name, steps: got }).toEqual({
                conversation: conv.name,
                steps: conv.steps,
              });
            }
          } finally {
            const exit = await server.stop('SIGTERM');
            expect(exit).toEqual({ code: 0, signal: null, killed: false });
          }
          if (vspec.stderrOnExit !== undefined) expect(server.stderr()).toContain(vspec.stderrOnExit);
        });

        it('answers pipelined requests and requests split across writes', async () => {
          const steps = vspec.conversations[0].steps;
          const text = steps.map(([req]) => `${req}\n`).join('');
          const expected = steps.map(([, reply]) => reply);
          const binary = (await built(program, version)).binary;
          const chunkings: Array<[string, string[], number]> = [
            ['one write', [text], 0],
            ['5-byte writes', text.match(/[\s\S]{1,5}/g) ?? [], 1],
          ];
          for (const [how, chunks, gapMs] of chunkings) {
            const server = await startServer(binary); // fresh state: the conversation expects it
            try {
              expect({ how, replies: await rawExchange(server.port, chunks, steps.length, { gapMs }) }).toEqual(
                {
                  how,
                  replies: expected,
                },
              );
            } finally {
              expect(await server.stop()).toEqual({ code: 0, signal: null, killed: false });
            }
          }
        });

        it('rejects an overlong line and keeps serving others', async () => {
          const server = await startServer((await built(program, version)).binary);
          try {
            expect(await rawExchange(server.port, ['x'.repeat(4096)], 1)).toEqual(['ERR line too long']);
            const [request, reply] = vspec.conversations[0].steps[0];
            expect(await converse(server.port, [request])).toEqual([reply]);
          } finally {
            expect(await server.stop()).toEqual({ code: 0, signal: null, killed: false });
          }
        });

        it('exits 0 on SIGTERM while clients are still connected', async () => {
          const server = await startServer((await built(program, version)).binary);
          const idle = await LineClient.connect(server.port);
          const busy = await LineClient.connect(server.port);
          try {
            // `busy` has been served once (in workerpool a worker thread now blocks reading it).
            const [request, reply] = vspec.conversations[0].steps[0];
            expect(await busy.request(request)).toBe(reply);
            const exit = await server.stop('SIGTERM');
            expect(exit).toEqual({ code: 0, signal: null, killed: false });
          } finally {
            idle.destroy();
            busy.destroy();
            await server.stop('SIGKILL');
          }
        });

        it('serves a concurrent load with no failed or wrong reply and exits 0 on SIGINT', async () => {
          const server = await startServer((await built(program, version)).binary);
          try {
            const result = await runLoad({ port: server.port, ...vspec.load });
            expect({
              failed: result.failed,
              wrong: result.wrong,
              wrongSamples: result.wrongSamples,
              failureSamples: result.failureSamples,
            }).toEqual({
              failed: 0,
              wrong: 0,
              wrongSamples: [],
              failureSamples: [],
            });
            expect(result.ok).toBeGreaterThan(100);
            console.log(
              `${program}/${version}: ${result.ok} ok in ${result.durationMs} ms over ${result.connections} connections, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms`,
            );
          } finally {
            const exit = await server.stop('SIGINT');
            expect(exit).toEqual({ code: 0, signal: null, killed: false });
          }
        });
      });
    },
  );
}
