import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ArtifactNotFoundError, DirectoryArtifactStore } from './artifact-store';

describe('DirectoryArtifactStore', () => {
  let dir: string;
  let store: DirectoryArtifactStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-artifacts-'));
    store = new DirectoryArtifactStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names content by its sha256 and stores it once', async () => {
    const data = Buffer.from('ELF pretend executable');
    const expected = createHash('sha256').update(data).digest('hex');
    const a = await store.put(data);
    const b = await store.put(Readable.from([data.subarray(0, 3), data.subarray(3)]));
    expect(a).toEqual({ sha256: expected, size: data.length });
    expect(b.sha256).toBe(expected);
    expect(await store.get(expected)).toEqual(data);
    expect(await store.has(expected)).toBe(true);
  });

  it('reports missing and corrupted artifacts and rejects malformed names', async () => {
    const missing = 'a'.repeat(64);
    await expect(store.get(missing)).rejects.toBeInstanceOf(ArtifactNotFoundError);
    const { sha256 } = await store.put(Buffer.from('x'));
    chmodSync(store.pathOf(sha256), 0o644);
    writeFileSync(store.pathOf(sha256), 'y');
    await expect(store.get(sha256)).rejects.toThrow(/corrupted/);
    expect(() => store.pathOf('../../etc/passwd')).toThrow(/not a sha256/);
  });
});
