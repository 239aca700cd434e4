import { posix } from 'node:path';
import { ArchiveRefusedError } from './archive-limits';

/** One archive entry as the tree rules see it (tar's header fields, type names as node-tar's). */
export interface TreeEntry {
  path: string;
  type: string;
  linkpath?: string;
}

/** What an accepted entry becomes: its normalized path inside the tree, and its kind. */
export type PlacedEntry =
  | { kind: 'file'; path: string }
  | { kind: 'dir'; path: string }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'hardlink'; path: string; target: string };

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const MAX_LINK_HOPS = 40;

/**
 * The rules a submitted source tree follows, applied entry by entry as the archive streams by:
 * paths stay inside the tree; symbolic links stay links and must resolve inside the tree (relative
 * targets only); no entry is written through a symbolic link; hard links only to files earlier in
 * the archive; no devices or FIFOs. Reasons are in plain words with what to do instead.
 */
export class ArchiveTree {
  private readonly kinds = new Map<string, PlacedEntry['kind']>();
  private readonly symlinks = new Map<string, string>();

  /** Checks one entry; returns where it goes or throws ArchiveRefusedError with the reason. */
  place(e: TreeEntry): PlacedEntry {
    const path = this.normalize(e.path);
    const through = this.symlinkPrefix(path);
    if (through)
      throw new ArchiveRefusedError(
        `${path} would be written through the symbolic link ${through} (to ${this.symlinks.get(through)}); put the file at its real place in the tree`,
      );
    const before = this.kinds.get(path);
    if (FILE_TYPES.has(e.type)) return this.remember({ kind: 'file', path }, before);
    if (e.type === 'Directory' || e.type === 'GNUDumpDir') {
      if (before && before !== 'dir')
        throw new ArchiveRefusedError(
          `${path} appears twice in the archive, as a ${before} and as a directory`,
        );
      this.kinds.set(path, 'dir');
      return { kind: 'dir', path };
    }
    if (e.type === 'SymbolicLink')
      return this.remember(
        { kind: 'symlink', path, target: this.symlinkTarget(path, e.linkpath ?? '') },
        before,
      );
    if (e.type === 'Link') {
      const target = this.normalizeLink(path, e.linkpath ?? '');
      if (this.kinds.get(target) !== 'file')
        throw new ArchiveRefusedError(
          `${path} is a hard link to ${e.linkpath}, which is not a file earlier in the submitted tree; replace it with a copy of the file`,
        );
      return this.remember({ kind: 'hardlink', path, target }, before);
    }
    const what: Record<string, string> = {
      CharacterDevice: 'a character device',
      BlockDevice: 'a block device',
      FIFO: 'a named pipe (FIFO)',
    };
    throw new ArchiveRefusedError(
      `${path} is ${what[e.type] ?? `an entry of unsupported type '${e.type}'`}; a source tree may hold only files, directories and links inside it — leave it out`,
    );
  }

  /**
   * Run once every entry was placed: each symbolic link, followed through the others, must end
   * inside the tree (a link can only be judged with all links known, e.g. `t -> s/..` with `s -> .`).
   */
  finish(): void {
    for (const [path, target] of this.symlinks) {
      if (this.resolve(`${posix.dirname(path)}/${target}`) === undefined)
        throw new ArchiveRefusedError(
          `${path} is a symbolic link to ${target}, which leads outside the submitted tree; replace it with the file itself`,
        );
    }
  }

  private remember(p: PlacedEntry, before: PlacedEntry['kind'] | undefined): PlacedEntry {
    if (before === 'dir' || before === 'symlink' || (before && p.kind === 'symlink'))
      throw new ArchiveRefusedError(
        `${p.path} appears twice in the archive, as a ${before} and as a ${p.kind}`,
      );
    this.kinds.set(p.path, p.kind);
    if (p.kind === 'symlink') {
      this.symlinks.set(p.path, p.target);
      // A new link can make an earlier one escape (`t -> s/..`, then `s -> .`): judge them all
      // again now, so extraction stops here; past a few thousand links only `finish` does.
      if (this.symlinks.size <= 2000) this.finish();
    }
    return p;
  }

  private normalize(raw: string): string {
    if (raw.includes('\0'))
      throw new ArchiveRefusedError(`an entry name contains a NUL byte; rename the file`);
    if (raw.startsWith('/'))
      throw new ArchiveRefusedError(
        `${raw} has an absolute path; the archive must hold paths relative to the source directory`,
      );
    const path = posix.normalize(raw).replace(/\/+$/, '');
    if (path === '..' || path.startsWith('../'))
      throw new ArchiveRefusedError(
        `${raw} points outside the submitted tree ('..'); the archive must hold paths inside the source directory`,
      );
    if (path === '.' || path === '') throw new ArchiveRefusedError(`an entry has an empty name`);
    return path;
  }

  private symlinkTarget(path: string, target: string): string {
    if (target.startsWith('/'))
      throw new ArchiveRefusedError(
        `${path} is a symbolic link to ${target}, outside the submitted tree; replace it with the file itself (or a relative link to a file inside the tree)`,
      );
    if (this.resolve(`${posix.dirname(path)}/${target}`) === undefined)
      throw new ArchiveRefusedError(
        `${path} is a symbolic link to ${target}, which leads outside the submitted tree; replace it with the file itself`,
      );
    return target;
  }

  private normalizeLink(path: string, target: string): string {
    const t = posix.normalize(target).replace(/\/+$/, '');
    if (target.startsWith('/') || t === '..' || t.startsWith('../'))
      throw new ArchiveRefusedError(
        `${path} is a hard link to ${target}, outside the submitted tree; replace it with a copy of the file`,
      );
    return t;
  }

  /** The longest proper prefix of `path` that is a symbolic link, if any. */
  private symlinkPrefix(path: string): string | undefined {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.symlinks.has(prefix)) return prefix;
    }
    return undefined;
  }

  // Callers pass `dir/target` unnormalized: `..` after a link component must be applied to where
  // the link leads, not cancel the component lexically (posix.join would).
  /**
   * Resolves a path relative to the tree root component by component, following the links known
   * so far; undefined when it climbs above the root (or loops).
   */
  private resolve(path: string, hops = 0): string | undefined {
    const out: string[] = [];
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === '..') {
        if (out.length === 0) return undefined;
        out.pop();
        continue;
      }
      out.push(parts[i]);
      const link = this.symlinks.get(out.join('/'));
      if (link === undefined) continue;
      if (hops >= MAX_LINK_HOPS || link.startsWith('/')) return undefined;
      out.pop();
      const resolved = this.resolve([...out, link].join('/'), hops + 1);
      if (resolved === undefined) return undefined;
      return this.resolve([resolved, ...parts.slice(i + 1)].join('/'), hops + 1);
    }
    return out.join('/');
  }
}
