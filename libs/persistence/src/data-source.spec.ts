import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { PostgresForSuite, providePostgres } from '@dsu/testing';
import { openDatabase } from './data-source';
import { ProgramEntity } from './entities/program.entity';

async function saveAndLoad(ds: DataSource): Promise<void> {
  const repo = ds.getRepository(ProgramEntity);
  await repo.save(repo.create({ id: 'kvstore', description: 'a key-value server' }));
  const loaded = await repo.findOneByOrFail({ id: 'kvstore' });
  expect(loaded.description).toBe('a key-value server');
  expect(loaded.createdAt).toBeInstanceOf(Date);
  // Schema came from the migrations table, not from synchronize.
  const ran = await ds.query('SELECT name FROM migrations');
  expect(ran.map((r: { name: string }) => r.name)).toEqual(['CreatePrograms1764216000000', 'CreatePipeline1764230000000']);
}

describe('persistence through migrations', () => {
  it('saves and loads a program on SQLite (better-sqlite3), and the data survives a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsu-sqlite-'));
    try {
      const path = join(dir, 'dsu.sqlite');
      const ds = await openDatabase({ sqlitePath: path });
      await saveAndLoad(ds);
      await ds.destroy();
      const again = await openDatabase({ sqlitePath: path });
      expect(await again.getRepository(ProgramEntity).count()).toBe(1);
      await again.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('on a real PostgreSQL', () => {
    let pg: PostgresForSuite;
    beforeAll(async () => {
      pg = await providePostgres('persistence');
    }, 120_000);
    afterAll(async () => pg?.cleanup(), 60_000);

    it('saves and loads a program', async () => {
      const ds = await openDatabase({ databaseUrl: pg.databaseUrl });
      try {
        expect(ds.options.type).toBe('postgres');
        await saveAndLoad(ds);
      } finally {
        await ds.destroy();
      }
    });
  });

  it('refuses a DATABASE_URL that is not PostgreSQL', async () => {
    await expect(openDatabase({ databaseUrl: 'mysql://x@y/z' })).rejects.toThrow(/must be a postgres:\/\/ URL/);
  });
});
