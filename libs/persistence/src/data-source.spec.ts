import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { PostgresForSuite, providePostgres } from '@dsu/testing';
import { migrations, openDatabase } from './data-source';
import { ProgramEntity } from './entities/program.entity';
import { ApiTokenEntity, AuditEntity } from './entities/access.entities';

async function saveAndLoad(ds: DataSource): Promise<void> {
  const repo = ds.getRepository(ProgramEntity);
  await repo.save(repo.create({ id: 'kvstore', description: 'a key-value server' }));
  const loaded = await repo.findOneByOrFail({ id: 'kvstore' });
  expect(loaded.description).toBe('a key-value server');
  expect(loaded.createdAt).toBeInstanceOf(Date);
  // Schema came from the migrations table, not from synchronize.
  const ran = await ds.query('SELECT name FROM migrations');
  expect(ran.map((r: { name: string }) => r.name)).toEqual([
    'CreatePrograms1764216000000',
    'CreatePipeline1764230000000',
    'RolloutTargetsWaitForPatches1795769237000',
    'CreateAccess1796500000000',
    'VerdictUpdatePoints1796600000000',
    'VersionTraceParent1796700000000',
    'ResultInstances1796800000000',
    'PatchTypesAndGlobals1796900000000',
  ]);
  await accessTables(ds);
}

/** Tokens are unique by hash; audit rows get increasing sequence numbers on both databases. */
async function accessTables(ds: DataSource): Promise<void> {
  const tokens = ds.getRepository(ApiTokenEntity);
  const row = {
    id: 'tok_0000000000000001',
    name: 'ci',
    tokenSha256: 'a'.repeat(64),
    scopes: ['submit', 'read'],
    createdAt: new Date().toISOString(),
    createdBy: 'local',
    lastUsedAt: null,
    revokedAt: null,
  };
  await tokens.insert(row);
  await expect(tokens.insert({ ...row, id: 'tok_0000000000000002' })).rejects.toThrow();
  expect((await tokens.findOneByOrFail({ id: row.id })).scopes).toEqual(['submit', 'read']);
  const audit = ds.getRepository(AuditEntity);
  const entry = () => ({
    at: new Date().toISOString(),
    actorKind: 'token' as const,
    actorId: row.id,
    actorName: 'ci',
    action: 'version.submit',
    program: 'kv',
    target: 'v1',
    outcome: 'accepted',
    detail: { sourceSha256: 'b'.repeat(64) },
  });
  // Fresh objects: insert() writes the generated seq back into the object it is given.
  await audit.insert(entry());
  await audit.insert({ ...entry(), target: 'v2' });
  const rows = await audit.find({ where: { program: 'kv' }, order: { seq: 'ASC' } });
  expect(rows.map((r) => r.target)).toEqual(['v1', 'v2']);
  expect(rows[1].seq).toBeGreaterThan(rows[0].seq);
  expect(rows[0].detail).toEqual(entry().detail);
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

  describe('five services opening an empty PostgreSQL at the same moment', () => {
    let pg: PostgresForSuite;
    beforeAll(async () => {
      pg = await providePostgres('persistence-race');
    }, 120_000);
    afterAll(async () => pg?.cleanup(), 60_000);

    it('migrate one after the other (advisory lock): every open succeeds, each migration runs once', async () => {
      const all = await Promise.all(
        Array.from({ length: 5 }, () => openDatabase({ databaseUrl: pg.databaseUrl })),
      );
      try {
        const ran = (await all[0].query('SELECT name FROM migrations')) as { name: string }[];
        expect(ran.map((r) => r.name)).toEqual(migrations.map((m) => m.name));
      } finally {
        await Promise.all(all.map((ds) => ds.destroy()));
      }
    });
  });

  it('waits for a PostgreSQL that does not answer yet, and says so, until its deadline', async () => {
    const waits: string[] = [];
    const started = Date.now();
    await expect(
      openDatabase(
        { databaseUrl: 'postgres://postgres@127.0.0.1:1/none' },
        { timeoutMs: 1_500, onWaiting: (dep, reason) => waits.push(`${dep}: ${reason}`) },
      ),
    ).rejects.toThrow(/PostgreSQL did not answer within 1500 ms \(DSU_STARTUP_TIMEOUT_MS\).*check DATABASE_URL/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    expect(waits[0]).toMatch(/^PostgreSQL: .*ECONNREFUSED/);
  });

  it('upgrades rollout targets of an existing database: commanded ones stay commanded, reported ones are reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dsu-sqlite-'));
    try {
      const path = join(dir, 'dsu.sqlite');
      const old = new DataSource({
        type: 'better-sqlite3',
        database: path,
        entities: [],
        migrations: migrations.slice(0, 2),
      });
      await old.initialize();
      await old.runMigrations();
      await old.query(
        `INSERT INTO rollout_targets (rollout_id, host, pid, patch_id, reported) VALUES ('r', 'h', 1, 'P', 1), ('r', 'h', 2, 'P', 0)`,
      );
      await old.destroy();
      const ds = await openDatabase({ sqlitePath: path });
      try {
        expect(
          await ds.query(`SELECT pid, patch_id, state, from_build_id FROM rollout_targets ORDER BY pid`),
        ).toEqual([
          { pid: 1, patch_id: 'P', state: 'reported', from_build_id: null },
          { pid: 2, patch_id: 'P', state: 'commanded', from_build_id: null },
        ]);
        // A target waiting for an on-demand patch has no patch id yet.
        await ds.query(
          `INSERT INTO rollout_targets (rollout_id, host, pid, patch_id, reported, state) VALUES ('r', 'h', 3, NULL, 0, 'waiting')`,
        );
      } finally {
        await ds.destroy();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a DATABASE_URL that is not PostgreSQL', async () => {
    await expect(openDatabase({ databaseUrl: 'mysql://x@y/z' })).rejects.toThrow(
      /must be a postgres:\/\/ URL/,
    );
  });
});
