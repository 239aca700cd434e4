import { mkdirSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';

/** Packs a directory's contents (gzip tar, paths relative to it, modes kept). */
export async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tar.create({ cwd: dir, gzip: true, portable: true }, readdirSync(dir));
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/**
 * Unpacks a tarball into `dir`. tar refuses absolute paths and `..` entries, so a hostile archive
 * cannot write outside `dir`; `strict` turns a damaged archive into an error instead of a warning.
 */
export async function unpackTo(archive: Buffer, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await pipeline(Readable.from([archive]), tar.extract({ cwd: dir, strict: true }));
}
