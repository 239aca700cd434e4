import { PassThrough, Readable } from 'node:stream';
import type { DirectoryArtifactStore } from '@dsu/artifacts';
import { ArchiveRefusedError, type ArchiveLimits } from './archive-limits';
import { type ArchiveSummary, inspectArchive } from './tarball';

/** A source archive that passed the checks and is in the artifact store. */
export interface ReceivedArchive extends ArchiveSummary {
  sha256: string;
  /** Compressed bytes received. */
  size: number;
}

/**
 * Receives an uploaded source archive as it streams in: each chunk goes at once to the artifact
 * store and to the archive inspector (limits and tree rules), with backpressure from both, so
 * neither the body nor its expansion is ever held in memory. The artifact is committed only once
 * the inspector accepted the whole archive. On refusal, the rest of the body is read and dropped
 * (the connection stays usable for the error reply) and ArchiveRefusedError says why.
 */
export async function receiveArchive(
  source: Buffer | Readable,
  store: DirectoryArtifactStore,
  limits: ArchiveLimits,
  maxBytes: number,
): Promise<ReceivedArchive> {
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
  const toStore = new PassThrough();
  const toCheck = new PassThrough();
  // Their failures reach us through `stored` / `checked`; a destroyed tee must not crash the process.
  toStore.on('error', () => undefined);
  toCheck.on('error', () => undefined);
  const stored = store.put(toStore);
  stored.catch(() => undefined); // awaited below; a refusal destroys it on purpose
  const checked = inspectArchive(toCheck, limits);
  let size = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: unknown) => {
        if (done) return;
        done = true;
        input.off('data', onData);
        if (err) {
          input.resume(); // drop the rest of the body
          reject(err);
        } else resolve();
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes)
          return finish(
            new ArchiveRefusedError(
              `the upload is larger than ${maxBytes} bytes (DSU_MAX_UPLOAD_BYTES); leave build outputs and data files out of the source tree`,
              413,
            ),
          );
        const a = toStore.write(chunk);
        const b = toCheck.write(chunk);
        if (a && b) return;
        input.pause();
        let pending = (a ? 0 : 1) + (b ? 0 : 1);
        const drained = () => --pending === 0 && !done && input.resume();
        if (!a) toStore.once('drain', drained);
        if (!b) toCheck.once('drain', drained);
      };
      input.on('data', onData);
      input.once('end', () => finish());
      input.once('error', finish);
      input.once('aborted', () =>
        finish(new ArchiveRefusedError('the upload was interrupted before its end')),
      );
      // The inspector may refuse long before the body ends (a bomb, a bad entry): stop there.
      checked.catch(finish);
    });
    toCheck.end();
    const summary = await checked;
    toStore.end();
    const { sha256 } = await stored;
    return { ...summary, sha256, size };
  } catch (err) {
    toStore.destroy(err instanceof Error ? err : new Error(String(err)));
    toCheck.destroy();
    await checked.catch(() => undefined);
    throw err;
  }
}
