import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type CloudEvent,
  type PatchFailedV1,
  type PatchGeneratedV1,
  type PatchRequestedV1,
  Topics,
  validatePayload,
} from '@dsu/events';
import type { Log, Outbox } from '@dsu/outbox';
import { buildPatch, UnsupportedChangeError } from '@dsu/patch-gen';
import type { PipelineInfra } from '../shared/infra';
import { packDir, unpackTo } from '../shared/tarball';

export const PATCHER = 'patcher';

/**
 * The patcher's use case: on `dsu.patch.requested`, unpack both build directories, generate the
 * patch bundle with patch-gen, store it as a tarball artifact and report the patch id.
 */
export async function generatePatch(
  infra: PipelineInfra,
  outbox: Outbox,
  log: Log,
  event: CloudEvent,
): Promise<void> {
  if (await outbox.seen(PATCHER, event)) return;
  const req = event.data as PatchRequestedV1;
  const work = await mkdtemp(join(tmpdir(), 'dsu-patch-'));
  let result: { topic: string; data: PatchGeneratedV1 | PatchFailedV1 };
  try {
    await unpackTo(await infra.store.get(req.from.buildDirSha256), join(work, 'from'));
    await unpackTo(await infra.store.get(req.to.buildDirSha256), join(work, 'to'));
    const { manifest } = await buildPatch(join(work, 'from'), join(work, 'to'), join(work, 'bundle'));
    const bundle = await infra.store.put(await packDir(join(work, 'bundle')));
    result = {
      topic: Topics.patchGenerated,
      data: {
        program: req.program,
        requestId: req.requestId,
        patchId: manifest.patchId,
        bundleSha256: bundle.sha256,
        from: { version: req.from.version, buildId: manifest.from.buildId },
        to: { version: req.to.version, buildId: manifest.to.buildId },
        functions: manifest.functions.map((f) => ({ key: f.key, change: f.change })),
        // The manifest made readable for the registry: what the data update changes.
        types: manifest.types.map((t) => ({
          name: t.name,
          oldSize: t.oldSize,
          newSize: t.newSize,
          mode: t.mode,
          fields: t.fields,
        })),
        globals: manifest.globals.map((g) => ({ key: g.key, change: g.change, ...(g.note ? { note: g.note } : {}) })),
      },
    };
    log('info', 'patch generated', {
      program: req.program,
      from: req.from.version,
      to: req.to.version,
      patchId: manifest.patchId,
    });
  } catch (err) {
    const reasons = err instanceof UnsupportedChangeError ? err.reasons : [];
    const error = err instanceof Error ? err.message : String(err);
    result = {
      topic: Topics.patchFailed,
      data: { program: req.program, requestId: req.requestId, error, reasons },
    };
    log('warn', 'patch generation failed', {
      program: req.program,
      from: req.from.version,
      to: req.to.version,
      error: error.split('\n')[0],
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await outbox.once(
    PATCHER,
    event,
    async (tx) => void tx.emit(result.topic, req.program, result.data, { causedBy: event }),
  );
}

export function patcherSubscription(infra: PipelineInfra, outbox: Outbox, log: Log) {
  return {
    group: infra.group(PATCHER),
    topics: [Topics.patchRequested],
    validate: validatePayload,
    handler: (e: CloudEvent) => generatePatch(infra, outbox, log, e),
  };
}
