import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BuildCompletedV1,
  type BuildFailedV1,
  type BuildRequestedV1,
  type CloudEvent,
  Topics,
  validatePayload,
} from '@dsu/events';
import { buildVersion } from '@dsu/instrument';
import type { Log, Outbox } from '@dsu/outbox';
import { BoundedText } from '../shared/bounded-text';
import type { PipelineInfra } from '../shared/infra';
import { ArchiveRefusedError } from '../shared/archive-limits';
import { extractArchive, packDir } from '../shared/tarball';

export const COMPILER = 'compiler';

/**
 * The compiler's use case: on `dsu.build.requested`, unpack the source tarball into a fresh
 * work directory (under the archive limits and tree rules), build it with dsu-cc under a time
 * limit, keep a bounded copy of the compiler output, store executable, program model and build
 * directory as artifacts, and report. Everything that can go wrong with the build itself ends in
 * `dsu.build.failed` with the reason, and the work directory is always removed; only a failure to
 * record the result (database, bus) is thrown, so the bus retries and then dead-letters it.
 */
export async function compileVersion(
  infra: PipelineInfra,
  outbox: Outbox,
  log: Log,
  event: CloudEvent,
): Promise<void> {
  if (await outbox.seen(COMPILER, event)) return;
  const req = event.data as BuildRequestedV1;
  const output = new BoundedText(infra.config.buildOutputLimit);
  const t0 = Date.now();
  log('info', 'build started', { program: req.program, version: req.version, eventId: event.id });
  let result: { topic: string; data: BuildCompletedV1 | BuildFailedV1 };
  let work: string | undefined;
  try {
    work = await mkdtemp(join(tmpdir(), 'dsu-compile-'));
    const data = await build(infra, req, work, (line) => output.push(line));
    result = { topic: Topics.buildCompleted, data: { ...data, durationMs: Date.now() - t0 } };
    log('info', 'build completed', {
      program: req.program,
      version: req.version,
      buildId: data.buildId,
      ms: Date.now() - t0,
    });
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    result = {
      topic: Topics.buildFailed,
      data: {
        program: req.program,
        version: req.version,
        error: error.slice(0, 8000),
        diagnostics: output.toString(),
      },
    };
    log('warn', 'build failed', { program: req.program, version: req.version, error: error.split('\n')[0] });
  } finally {
    if (work) await removeWorkDir(work, log);
  }
  await outbox.once(
    COMPILER,
    event,
    async (tx) => void tx.emit(result.topic, req.program, result.data, { causedBy: event }),
  );
}

/** Unpacks, builds and stores one version in `work`; throws with the reason when any step fails. */
async function build(
  infra: PipelineInfra,
  req: BuildRequestedV1,
  work: string,
  onOutput: (line: string) => void,
): Promise<Omit<BuildCompletedV1, 'durationMs'>> {
  const src = join(work, 'src');
  const source = Readable.from(verified(await infra.store.stream(req.sourceSha256), req.sourceSha256));
  await extractArchive(source, src, infra.config.archiveLimits).catch((err: unknown) => {
    throw err instanceof ArchiveRefusedError
      ? new Error(`the submitted source was refused: ${err.message}`)
      : err;
  });
  const out = join(work, 'build');
  // Keep the struct capacities of the program's lineage (see BuildRequestedV1).
  let layoutFrom: string | undefined;
  if (req.layoutFromModelSha256) {
    layoutFrom = join(work, 'layout-from');
    await mkdir(layoutFrom);
    await writeFile(join(layoutFrom, 'model.json'), await infra.store.get(req.layoutFromModelSha256));
    await writeFile(join(layoutFrom, 'build.json'), JSON.stringify({ format: 1, model: 'model.json' }));
  }
  const built = await buildVersion(src, out, {
    layoutFrom,
    program: req.program,
    version: req.version,
    bin: req.bin ?? undefined,
    updatePoints: req.updatePoints,
    timeoutMs: infra.config.buildTimeoutMs,
    maxOutputBytes: infra.config.buildOutputMax,
    onOutput,
    // The submitted code is not ours: make, the compile server and clang run in the sandbox,
    // where the artifact store, the keys and the database do not exist.
    sandbox: { mode: infra.config.buildSandbox, hide: infra.config.buildHidden },
  });
  const exe = await infra.store.put(await readFile(join(out, built.executable)));
  const model = await infra.store.put(await readFile(join(out, built.model)));
  const dir = await infra.store.put(await packDir(out));
  return {
    program: req.program,
    version: req.version,
    buildId: built.buildId,
    executable: built.executable,
    executableSha256: exe.sha256,
    modelSha256: model.sha256,
    buildDirSha256: dir.sha256,
  };
}

/** Passes an artifact through, failing at its end when its content does not match its name. */
async function* verified(stream: Readable, sha256: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    yield chunk;
  }
  const actual = hash.digest('hex');
  if (actual !== sha256)
    throw new Error(
      `the source artifact ${sha256} is corrupted on disk (its content hashes to ${actual}); submit the version again`,
    );
}

/**
 * Removes a build's work directory; never throws (a leftover directory must not turn a reported
 * build into a redelivered one), but says so in the log.
 */
async function removeWorkDir(work: string, log: Log): Promise<void> {
  try {
    await rm(work, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    log('error', 'could not remove a build work directory; remove it by hand', {
      dir: work,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

export function compilerSubscription(infra: PipelineInfra, outbox: Outbox, log: Log) {
  return {
    group: infra.group(COMPILER),
    topics: [Topics.buildRequested],
    validate: validatePayload,
    handler: (e: CloudEvent) => compileVersion(infra, outbox, log, e),
  };
}
