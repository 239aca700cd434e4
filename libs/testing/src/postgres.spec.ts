import { Client } from 'pg';
import { providePostgres } from './postgres';
import { uniqueName } from './unique-name';

describe('providePostgres', () => {
  it('gives the suite a database of its own on a real server and drops it afterwards', async () => {
    const pg = await providePostgres('testing_lib');
    const dbName = new URL(pg.databaseUrl).pathname.slice(1);
    const c = new Client({ connectionString: pg.databaseUrl });
    await c.connect();
    const { rows } = await c.query('SELECT current_database() AS db, version() AS v');
    await c.end();
    expect(rows[0].db).toBe(dbName);
    expect(rows[0].v).toMatch(/PostgreSQL/);

    // Check the drop from a second database on the same server before the server itself goes.
    const other = await providePostgres('testing_lib_observer');
    await pg.cleanup();
    const o = new Client({ connectionString: other.databaseUrl });
    await o.connect();
    const left = await o.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    await o.end();
    await other.cleanup();
    expect(left.rowCount).toBe(0);
  }, 180_000);

  it('makes names unique per run and safe as identifiers', () => {
    const a = uniqueName('My-Suite');
    expect(a).toMatch(/^my_suite_\d+_[0-9a-f]{8}$/);
    expect(uniqueName('My-Suite')).not.toBe(a);
  });
});
