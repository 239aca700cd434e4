import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packDir, unpackTo } from './tarball';

describe('tarballs', () => {
  it('round-trips a directory with modes, and refuses a damaged archive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsu-tar-'));
    try {
      mkdirSync(join(dir, 'in', 'sub'), { recursive: true });
      writeFileSync(join(dir, 'in', 'sub', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
      const archive = await packDir(join(dir, 'in'));
      await unpackTo(archive, join(dir, 'out'));
      expect(readFileSync(join(dir, 'out', 'sub', 'run.sh'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
      expect(statSync(join(dir, 'out', 'sub', 'run.sh')).mode & 0o111).not.toBe(0);
      await expect(unpackTo(archive.subarray(0, archive.length / 2), join(dir, 'bad'))).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
