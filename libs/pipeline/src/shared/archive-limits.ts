import { Transform, type TransformCallback } from 'node:stream';

/**
 * How much a submitted source archive may expand to. Checked while the archive streams through
 * gunzip, so a decompression bomb is refused after a few megabytes, not after it filled memory
 * or the disk.
 */
export interface ArchiveLimits {
  /** Entries (files, directories, links) in the archive. */
  maxEntries: number;
  /** Bytes after gunzip (the tar stream, headers included). */
  maxExpandedBytes: number;
  /** Expanded bytes per compressed byte, checked once `ratioGraceBytes` have expanded. */
  maxRatio: number;
  /** Expanded bytes before the ratio is checked (small archives of zeros compress very well). */
  ratioGraceBytes: number;
}

/** Why an archive was not accepted, in plain words; `status` is the HTTP status to answer with. */
export class ArchiveRefusedError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
    this.name = 'ArchiveRefusedError';
  }
}

const MiB = 1024 * 1024;

/** The limits for submitted sources: `DSU_ARCHIVE_MAX_ENTRIES`, `DSU_ARCHIVE_MAX_BYTES`, `DSU_ARCHIVE_MAX_RATIO`. */
export function archiveLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): ArchiveLimits {
  const num = (name: string, dflt: number) => {
    const raw = env[name];
    const v = raw === undefined || raw === '' ? dflt : Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number, got '${raw}'`);
    return v;
  };
  return {
    maxEntries: num('DSU_ARCHIVE_MAX_ENTRIES', 100_000),
    maxExpandedBytes: num('DSU_ARCHIVE_MAX_BYTES', 1024 * MiB),
    maxRatio: num('DSU_ARCHIVE_MAX_RATIO', 200),
    ratioGraceBytes: 16 * MiB,
  };
}

/**
 * Limits for archives the pipeline made itself (build directories, patch bundles): the same
 * entry rules, no size or ratio limit (an object file full of zeros compresses 1000:1).
 */
export const INTERNAL_ARCHIVE_LIMITS: ArchiveLimits = {
  maxEntries: 10_000_000,
  maxExpandedBytes: Number.MAX_SAFE_INTEGER,
  maxRatio: Number.POSITIVE_INFINITY,
  ratioGraceBytes: 0,
};

function size(n: number): string {
  return n >= MiB ? `${Math.round(n / MiB)} MiB` : `${n} bytes`;
}

/**
 * Counts the bytes on both sides of gunzip and fails the stream as soon as a limit is passed.
 * `compressed()` goes before gunzip, `expanded()` after it.
 */
export class ArchiveMeter {
  compressedBytes = 0;
  expandedBytes = 0;
  entries = 0;

  constructor(readonly limits: ArchiveLimits) {}

  compressed(): Transform {
    const magic: number[] = [];
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        for (let i = 0; magic.length < 2 && i < chunk.length; i++) magic.push(chunk[i]);
        if (magic.length === 2 && (magic[0] !== 0x1f || magic[1] !== 0x8b))
          return cb(
            new ArchiveRefusedError(
              'the request body is not a gzip tarball (content-type application/gzip); send the gzip tar of the source directory (tar czf)',
            ),
          );
        this.compressedBytes += chunk.length;
        cb(null, chunk);
      },
    });
  }

  expanded(): Transform {
    let first = true;
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        // tar's parser would itself decompress (synchronously, on the event loop) an archive
        // compressed twice; refuse that instead.
        if (first && chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) {
          return cb(
            new ArchiveRefusedError(
              'the archive is compressed twice; send one gzip tar of the source directory',
            ),
          );
        }
        first = false;
        this.expandedBytes += chunk.length;
        const refused = this.check();
        if (refused) cb(refused);
        else cb(null, chunk);
      },
    });
  }

  /** Called before an entry's body is read: refuses on its declared size and on the entry count. */
  entry(path: string, bytes: number): void {
    this.entries++;
    if (this.entries > this.limits.maxEntries)
      throw new ArchiveRefusedError(
        `the archive has more than ${this.limits.maxEntries} entries (DSU_ARCHIVE_MAX_ENTRIES); leave build outputs and dependencies out of the source tree`,
        413,
      );
    if (this.expandedBytes + bytes > this.limits.maxExpandedBytes)
      throw new ArchiveRefusedError(
        `${path} (${size(bytes)}) would bring the expanded archive past ${size(this.limits.maxExpandedBytes)} (DSU_ARCHIVE_MAX_BYTES); leave large data files out of the source tree`,
        413,
      );
  }

  private check(): ArchiveRefusedError | null {
    if (this.expandedBytes > this.limits.maxExpandedBytes)
      return new ArchiveRefusedError(
        `the archive expands to more than ${size(this.limits.maxExpandedBytes)} (DSU_ARCHIVE_MAX_BYTES); leave large data files out of the source tree`,
        413,
      );
    const ratio = this.expandedBytes / Math.max(1, this.compressedBytes);
    if (this.expandedBytes > this.limits.ratioGraceBytes && ratio > this.limits.maxRatio)
      return new ArchiveRefusedError(
        `the archive expands more than ${this.limits.maxRatio} times its compressed size (${size(this.expandedBytes)} from ${size(this.compressedBytes)} so far; DSU_ARCHIVE_MAX_RATIO); this looks like a decompression bomb, not a source tree`,
        413,
      );
    return null;
  }
}
