import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DirectoryArtifactStore } from '@dsu/artifacts';
import { CloudEvent, createEvent, InProcessBus, Topics } from '@dsu/events';
import { dsuHome, openDatabase, ProgramEntity } from '@dsu/persistence';

const run = promisify(execFile);

const SAMPLE = `#include <stdio.h>
int main(void) { printf("hello from a program built by the dsu smoke pipeline\\n"); return 0; }
`;

export interface SmokeResult {
  program: string;
  database: string;
  sourceSha256: string;
  executableSha256: string;
  output: string;
  events: string[];
  ms: number;
}

/**
 * The smoke pipeline on the embedded default: registers a program in the SQLite registry,
 * stores its source as an artifact, and lets a compiler stage and a registry stage talk over the
 * in-process bus with CloudEvents (build.requested -> build.completed), then runs the result.
 */
export async function runSmoke(log: (line: string) => void): Promise<SmokeResult> {
  const started = Date.now();
  const home = dsuHome();
  const database = join(home, 'dsu.sqlite');
  const ds = await openDatabase({ sqlitePath: database });
  const store = new DirectoryArtifactStore(join(home, 'artifacts'));
  const bus = new InProcessBus();
  const events: string[] = [];
  const work = mkdtempSync(join(tmpdir(), 'dsu-smoke-'));
  try {
    log(`registry  ${database} (migrations applied)`);
    await ds.getRepository(ProgramEntity).save({ id: 'hello', description: 'smoke-test program' });
    const source = await store.put(Buffer.from(SAMPLE));
    log(`artifact  source ${source.sha256.slice(0, 12)} (${source.size} bytes)`);

    const done = new Promise<CloudEvent>((resolve, reject) => {
      void bus.subscribe({
        group: 'compiler',
        topics: [Topics.buildRequested],
        handler: async (e) => {
          events.push(e.type);
          const { sourceSha256 } = e.data as { sourceSha256: string };
          const src = join(work, 'hello.c');
          writeFileSync(src, await store.get(sourceSha256));
          const cc = process.env.DSU_CC ?? 'cc';
          await run(cc, ['-O2', '-o', join(work, 'hello'), src]);
          const exe = await store.put(readFileSync(join(work, 'hello')));
          log(`compiler  built with ${cc}: executable ${exe.sha256.slice(0, 12)} (${exe.size} bytes)`);
          await bus.publish(
            Topics.buildCompleted,
            createEvent({ type: 'dsu.build.completed.v1', source: 'compiler', subject: 'hello', data: { executableSha256: exe.sha256 }, causedBy: e }),
            'hello',
          );
        },
      });
      void bus.subscribe({
        group: 'gateway',
        topics: [Topics.buildCompleted],
        handler: async (e) => {
          events.push(e.type);
          resolve(e);
        },
      });
      setTimeout(() => reject(new Error('the smoke pipeline did not complete within 60 s; see the dead letters above')), 60_000).unref();
    });

    const request = createEvent({ type: 'dsu.build.requested.v1', source: 'cli', subject: 'hello', data: { sourceSha256: source.sha256 } });
    log(`event     ${request.type} ${request.id}`);
    await bus.publish(Topics.buildRequested, request, 'hello');
    const completed = await done;
    log(`event     ${completed.type} (correlation ${completed.correlationid === request.id ? 'kept' : 'LOST'})`);

    const { executableSha256 } = completed.data as { executableSha256: string };
    const exePath = join(work, 'hello-from-store');
    writeFileSync(exePath, await store.get(executableSha256));
    chmodSync(exePath, 0o755);
    const { stdout } = await run(exePath);
    log(`run       ${stdout.trim()}`);
    for (const d of bus.deadLetters()) log(`dead-letter ${d.topic}: ${d.error}`);
    return { program: 'hello', database, sourceSha256: source.sha256, executableSha256, output: stdout, events, ms: Date.now() - started };
  } finally {
    await bus.close();
    await ds.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}
