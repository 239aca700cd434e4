import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const SHA256 = /^[0-9a-f]{64}$/;

export class ArtifactNotFoundError extends Error {
  constructor(readonly sha256: string) {
    super(`artifact ${sha256} is not in the store`);
    this.name = 'ArtifactNotFoundError';
  }
}

/**
 * Content-addressed artifact store on a directory: an artifact's name is the sha256 of its
 * bytes, so events carry references, writes are idempotent, and a corrupted file is detected.
 * Layout: `<root>/sha256/ab/abcdef...`; writes go to a temp file and are renamed into place.
 */
export class DirectoryArtifactStore {
  constructor(readonly root: string) {}

  pathOf(sha256: string): string {
    if (!SHA256.test(sha256)) throw new Error(`'${sha256}' is not a sha256 hex digest`);
    return join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  /** Stores bytes from a buffer or stream and returns their sha256. */
  async put(content: Buffer | Readable): Promise<{ sha256: string; size: number }> {
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, randomBytes(8).toString('hex'));
    const hash = createHash('sha256');
    let size = 0;
    const source = Buffer.isBuffer(content) ? Readable.from([content]) : content;
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const c of chunks) {
            hash.update(c);
            size += c.length;
            yield c;
          }
        },
        createWriteStream(tmp, { mode: 0o444 }),
      );
      const sha256 = hash.digest('hex');
      const dest = this.pathOf(sha256);
      await mkdir(join(dest, '..'), { recursive: true });
      await rename(tmp, dest);
      return { sha256, size };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async has(sha256: string): Promise<boolean> {
    return stat(this.pathOf(sha256)).then(
      () => true,
      () => false,
    );
  }

  /** Reads an artifact whole, verifying its content still matches its name. */
  async get(sha256: string): Promise<Buffer> {
    const file = await open(this.pathOf(sha256), 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? new ArtifactNotFoundError(sha256) : err;
    });
    try {
      const data = await file.readFile();
      const actual = createHash('sha256').update(data).digest('hex');
      if (actual !== sha256) throw new Error(`artifact ${sha256} is corrupted on disk (content hashes to ${actual})`);
      return data;
    } finally {
      await file.close();
    }
  }

  /** Streams an artifact (for large executables served over HTTP). */
  async stream(sha256: string): Promise<Readable> {
    if (!(await this.has(sha256))) throw new ArtifactNotFoundError(sha256);
    return createReadStream(this.pathOf(sha256));
  }
}
