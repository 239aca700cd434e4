import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The canonical digest of a bundle directory (docs/bundle-signing.md), the "bundle hash" a local
 * approval signs — the pipeline signs the sha256 of the bundle tarball instead.
 *
 * Covered: `manifest.json`, `patch.so`, `verdict.json` (required), and `patch.c`, `patch.yaml`,
 * `models/**`, `units/**` when present: everything the runtime loads or a reviewer relies on.
 * Other files (and `signature.json`, which holds the signature) are not covered. A link, device or
 * FIFO among the covered paths is refused, so what was hashed is what is later read.
 *
 * digest = sha256("dsu-bundle-digest:v1\n" + for each file, sorted by path bytes:
 *                 path + "\0" + hex sha256(file) + "\n"), paths relative with '/'.
 * A path never holds NUL and the hash has a fixed length, so the encoding is unambiguous.
 */
export const BUNDLE_DIGEST_VERSION = 'dsu-bundle-digest:v1';

export const REQUIRED_BUNDLE_FILES = ['manifest.json', 'patch.so', 'verdict.json'] as const;
const OPTIONAL_FILES = ['patch.c', 'patch.yaml'];
const COVERED_DIRS = ['models', 'units'];

/** One covered file: its relative path, bytes (read once) and sha256. */
export interface BundleFile {
  path: string;
  sha256: string;
  bytes: Buffer;
}

/** The covered files of a bundle, read once, and their digest. */
export interface BundleSnapshot {
  dir: string;
  digest: string;
  files: BundleFile[];
  /** The bytes of a covered file, as hashed (undefined when absent). */
  file(path: string): Buffer | undefined;
}

/** A bundle whose covered files cannot be read or are not regular files. */
export class BundleLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleLayoutError';
  }
}

function kindOf(abs: string): 'file' | 'dir' | 'missing' | string {
  let st;
  try {
    st = lstatSync(abs);
  } catch {
    return 'missing';
  }
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  return 'not a regular file';
}

function walk(dir: string, rel: string, out: string[]): void {
  for (const name of readdirSync(join(dir, rel))) {
    const path = `${rel}/${name}`;
    const kind = kindOf(join(dir, path));
    if (kind === 'dir') walk(dir, path, out);
    else if (kind === 'file') out.push(path);
    else throw new BundleLayoutError(`${path} in ${dir} is ${kind}; a bundle holds only regular files`);
  }
}

/** The covered paths present in `dir`, sorted canonically; throws on a missing required file. */
export function coveredPaths(dir: string, opts: { requireVerdict?: boolean } = {}): string[] {
  const paths: string[] = [];
  const required = REQUIRED_BUNDLE_FILES.filter((f) => f !== 'verdict.json' || opts.requireVerdict !== false);
  for (const f of [...REQUIRED_BUNDLE_FILES, ...OPTIONAL_FILES]) {
    const kind = kindOf(join(dir, f));
    if (kind === 'file') paths.push(f);
    else if (kind === 'missing') {
      if ((required as readonly string[]).includes(f))
        throw new BundleLayoutError(
          f === 'verdict.json'
            ? `${dir} has no verdict.json: the bundle was never checked; run 'dsu check ${dir}'`
            : `${dir} has no ${f}; create the bundle with 'dsu patch'`,
        );
    } else throw new BundleLayoutError(`${f} in ${dir} is ${kind}; a bundle holds only regular files`);
  }
  for (const d of COVERED_DIRS) {
    const kind = kindOf(join(dir, d));
    if (kind === 'dir') walk(dir, d, paths);
    else if (kind !== 'missing') throw new BundleLayoutError(`${d} in ${dir} is ${kind}, not a directory`);
  }
  return paths.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Reads a file without following a link at its own name (it may have been swapped since lstat). */
function readRegular(dir: string, path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(join(dir, path), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    throw new BundleLayoutError(`cannot read ${path} in ${dir}: ${(err as Error).message}`);
  }
  try {
    if (!fstatSync(fd).isFile())
      throw new BundleLayoutError(
        `${path} in ${dir} is not a regular file; a bundle holds only regular files`,
      );
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The digest over (path, sha256) pairs; the one definition both signer and verifier use. */
export function digestOf(files: readonly { path: string; sha256: string }[]): string {
  const h = createHash('sha256').update(`${BUNDLE_DIGEST_VERSION}\n`);
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (const f of sorted) h.update(`${f.path}\0${f.sha256}\n`);
  return h.digest('hex');
}

/**
 * Reads every covered file of a bundle once and digests it. Callers parse the manifest and the
 * verdict from `file()`, never from disk again, so what they judge is exactly what was hashed.
 */
export function snapshotBundle(dir: string, opts: { requireVerdict?: boolean } = {}): BundleSnapshot {
  const files = coveredPaths(dir, opts).map((path) => {
    const bytes = readRegular(dir, path);
    return { path, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  });
  const byPath = new Map(files.map((f) => [f.path, f.bytes]));
  return { dir, digest: digestOf(files), files, file: (p) => byPath.get(p) };
}
