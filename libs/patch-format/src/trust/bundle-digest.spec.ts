import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { coveredPaths, digestOf, snapshotBundle } from './bundle-digest';
import { writeTestBundle } from '../../test/bundle-fixture';

describe('bundle directory digest', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-digest-'));
    writeTestBundle(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('covers manifest, patch.so, verdict, patch.c, models and units, in canonical order', () => {
    writeFileSync(join(dir, 'signature.json'), '{}');
    writeFileSync(join(dir, 'notes.txt'), 'not relied on');
    expect(coveredPaths(dir)).toEqual([
      'manifest.json',
      'models/from.json',
      'models/to.json',
      'patch.c',
      'patch.so',
      'units/main.c.i',
      'verdict.json',
    ]);
  });

  it('changes with any byte of a covered file, and not with files outside the set', () => {
    const before = snapshotBundle(dir).digest;
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, 'signature.json'), '{"any":1}');
    expect(snapshotBundle(dir).digest).toBe(before);
    for (const f of ['patch.so', 'verdict.json', 'units/main.c.i', 'models/to.json', 'patch.c']) {
      const d = mkdtempSync(join(tmpdir(), 'dsu-digest-'));
      try {
        writeTestBundle(d);
        expect(snapshotBundle(d).digest).toBe(before);
        writeFileSync(join(d, f), 'changed');
        expect(snapshotBundle(d).digest).not.toBe(before);
      } finally {
        rmSync(d, { recursive: true, force: true });
      }
    }
    writeFileSync(join(dir, 'units', 'extra.i'), '');
    expect(snapshotBundle(dir).digest).not.toBe(before);
  });

  it('is a pure function of (path, sha256) pairs, independent of their order', () => {
    const a = { path: 'a', sha256: '1'.repeat(64) };
    const b = { path: 'b', sha256: '2'.repeat(64) };
    expect(digestOf([a, b])).toBe(digestOf([b, a]));
    expect(digestOf([a, b])).not.toBe(digestOf([{ ...a, path: 'c' }, b]));
    expect(snapshotBundle(dir).digest).toBe(digestOf(snapshotBundle(dir).files));
  });

  it('refuses links and says which file is missing', () => {
    rmSync(join(dir, 'patch.c'));
    symlinkSync('/etc/passwd', join(dir, 'patch.c'));
    expect(() => snapshotBundle(dir)).toThrow(/patch.c .* is a symbolic link/);
    rmSync(join(dir, 'patch.c'));
    rmSync(join(dir, 'verdict.json'));
    expect(() => snapshotBundle(dir)).toThrow(
      /no verdict.json: the bundle was never checked; run 'dsu check/,
    );
    expect(snapshotBundle(dir, { requireVerdict: false }).file('verdict.json')).toBeUndefined();
  });
});
