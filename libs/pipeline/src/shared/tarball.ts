import { createWriteStream, readdirSync } from 'node:fs';
import { link, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar';
import {
  ArchiveMeter,
  ArchiveRefusedError,
  type ArchiveLimits,
  INTERNAL_ARCHIVE_LIMITS,
} from './archive-limits';
import { ArchiveTree, type PlacedEntry } from './archive-tree';

/** Packs a directory's contents (gzip tar, paths relative to it, modes kept, links kept as links). */
export async function packDir(dir: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stream = tar.create({ cwd: dir, gzip: true, portable: true }, readdirSync(dir));
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** What an archive held: entries and expanded bytes. */
export interface ArchiveSummary {
  entries: number;
  expandedBytes: number;
  compressedBytes: number;
}

type EntryBody = tar.ReadEntry;

/**
 * Streams a gzip tar through gunzip (node's, off the event loop) and tar's parser, applying the
 * size limits and the tree rules (ArchiveTree) to every entry before its body is read, and hands
 * each accepted entry to `sink` one at a time (the parser waits for it). Rejects with
 * ArchiveRefusedError (plain-words reason) on the first violation; nothing is in flight then.
 */
async function walkArchive(
  source: Readable | Buffer,
  limits: ArchiveLimits,
  sink: (placed: PlacedEntry, body: EntryBody) => Promise<void>,
): Promise<ArchiveSummary> {
  const meter = new ArchiveMeter(limits);
  const tree = new ArchiveTree();
  const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
  const parser = new tar.Parser({ strict: true, brotli: false, zstd: false });
  let failure: unknown;
  // The write (or final) callback waiting for the parser: called on drain/end, or with the failure.
  let waiting: ((err?: Error) => void) | undefined;
  const release = (err?: Error) => {
    const cb = waiting;
    waiting = undefined;
    cb?.(err);
  };
  let current: EntryBody | undefined;
  const fail = (err: unknown) => {
    if (failure) return;
    failure = err;
    // tar decorates the error it is given (code TAR_ABORT): give it a copy, keep ours intact.
    parser.abort(new Error(err instanceof Error ? err.message : String(err)));
    release(asRefusal(err));
    // The entry being read gets no more data: end it so the sink finishes (and the chain settles).
    current?.end();
  };
  let chain = Promise.resolve();
  parser.on('entry', (entry: EntryBody) => {
    // Bodiless entries (directories, links) do not wait for us, so the sink runs in archive order
    // on a chain; a body the sink has not read yet holds the parser back (backpressure).
    chain = chain.then(async () => {
      if (failure) return void entry.resume();
      try {
        current = entry;
        meter.entry(entry.path, entry.size ?? 0);
        await sink(tree.place({ path: entry.path, type: entry.type, linkpath: entry.linkpath }), entry);
      } catch (err) {
        entry.resume();
        fail(err);
      } finally {
        current = undefined;
      }
    });
  });
  parser.on('error', fail);
  parser.on('warn', (_code: string, message: string | Error) =>
    fail(message instanceof Error ? message : new Error(message)),
  );
  let ended = false;
  parser.on('drain', () => (ended ? undefined : release()));
  const sinkStream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      if (failure) return cb(asRefusal(failure));
      if (parser.write(chunk)) cb();
      else waiting = cb;
    },
    final: (cb) => {
      if (failure) return cb(asRefusal(failure));
      ended = true;
      waiting = cb;
      parser.once('end', () => release());
      parser.end();
    },
  });
  try {
    await pipeline(input, meter.compressed(), createGunzip(), meter.expanded(), sinkStream);
  } catch (err) {
    fail(err);
  }
  await chain;
  if (failure) throw asRefusal(failure);
  tree.finish();
  return {
    entries: meter.entries,
    expandedBytes: meter.expandedBytes,
    compressedBytes: meter.compressedBytes,
  };
}

/** Errors of a damaged or non-gzip input, said in plain words. */
function asRefusal(err: unknown): Error {
  if (err instanceof ArchiveRefusedError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'Z_DATA_ERROR' || e?.code === 'Z_BUF_ERROR' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE')
    return new ArchiveRefusedError(
      `the archive is not a complete gzip file (${e.message}); send the gzip tar of the source directory (tar czf)`,
    );
  if (typeof e?.code === 'string' && e.code.startsWith('TAR_'))
    return new ArchiveRefusedError(
      `the archive is damaged or not a tar archive (${e.message}); send the gzip tar of the source directory`,
    );
  if (e instanceof Error && /TAR_|Unrecognized archive|checksum/.test(e.message))
    return new ArchiveRefusedError(
      `the archive is damaged or not a tar archive (${e.message}); send the gzip tar of the source directory`,
    );
  return e instanceof Error ? e : new Error(String(e));
}

/** Checks a gzip tar without writing anything (the gateway, at submit time). */
export function inspectArchive(source: Readable | Buffer, limits: ArchiveLimits): Promise<ArchiveSummary> {
  return walkArchive(source, limits, async (_placed, body) => {
    body.resume();
    await new Promise<void>((res) => (body.emittedEnd ? res() : body.once('end', () => res())));
  });
}

/**
 * Unpacks a gzip tar into `dir` under the tree rules: files are created fresh (never through an
 * existing link), modes lose setuid/setgid and stay owner-writable, mtimes are kept (make needs
 * them), symbolic links are created as links. Rejects with ArchiveRefusedError on a bad tree.
 */
export async function extractArchive(
  source: Readable | Buffer,
  dir: string,
  limits: ArchiveLimits = INTERNAL_ARCHIVE_LIMITS,
): Promise<ArchiveSummary> {
  await mkdir(dir, { recursive: true });
  return walkArchive(source, limits, async (placed, body) => {
    const dest = join(dir, placed.path);
    const parent = join(dest, '..');
    if (placed.kind === 'dir') {
      await mkdir(dest, { recursive: true, mode: 0o755 });
      return drain(body);
    }
    await mkdir(parent, { recursive: true, mode: 0o755 });
    await rm(dest, { force: true }); // a later copy of a file replaces the earlier one
    if (placed.kind === 'symlink') {
      await symlink(placed.target, dest);
      return drain(body);
    }
    if (placed.kind === 'hardlink') {
      await link(join(dir, placed.target), dest);
      return drain(body);
    }
    const mode = ((body.mode ?? 0o644) & 0o777) | 0o600;
    await new Promise<void>((res, rej) => {
      const out = createWriteStream(dest, { flags: 'wx', mode });
      out.once('error', rej).once('close', () => res());
      body.pipe(out);
    });
    if (body.mtime) await utimes(dest, body.mtime, body.mtime);
  });
}

function drain(body: EntryBody): Promise<void> {
  body.resume();
  return body.emittedEnd ? Promise.resolve() : new Promise((res) => body.once('end', () => res()));
}

/** Unpacks an archive the pipeline made itself (build directory, bundle) into `dir`. */
export async function unpackTo(archive: Buffer | Readable, dir: string): Promise<void> {
  await extractArchive(archive, dir, INTERNAL_ARCHIVE_LIMITS);
}
