import { Client } from 'pg';
import { containerRuntimeAvailable } from './container-runtime';
import { runLauncher } from './launcher';
import { SharedServer } from './shared-server';

const launched = new SharedServer(() => runLauncher('postgres', 'DATABASE_URL'));
import { uniqueName } from './unique-name';

export interface PostgresForSuite {
  /** URL of a database created for this suite alone. */
  databaseUrl: string;
  source: 'env' | 'testcontainers' | 'local-launcher';
  /** Drops the suite's database and stops a server the helper started itself. */
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + database;
  return u.toString();
}

/**
 * Hands a test suite its own PostgreSQL database: on the server of `DATABASE_URL` when set;
 * otherwise in a Testcontainers server when a container runtime answers; otherwise on a
 * throwaway cluster started by `tools/postgres/start`.
 */
export async function providePostgres(suite: string): Promise<PostgresForSuite> {
  let serverUrl: string;
  let source: PostgresForSuite['source'];
  let stopServer: () => Promise<void> = async () => undefined;

  if (process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL;
    source = 'env';
  } else if (await containerRuntimeAvailable()) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:16-alpine').start();
    serverUrl = container.getConnectionUri();
    source = 'testcontainers';
    stopServer = async () => void (await container.stop());
  } else {
    const server = await launched.acquire();
    serverUrl = server.value;
    source = 'local-launcher';
    stopServer = () => launched.release();
  }

  const database = uniqueName(suite);
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${database}"`);
  } finally {
    await admin.end();
  }

  return {
    databaseUrl: withDatabase(serverUrl, database),
    source,
    cleanup: async () => {
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      } finally {
        await c.end();
        await stopServer();
      }
    },
  };
}
