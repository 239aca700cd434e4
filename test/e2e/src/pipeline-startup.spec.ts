// The five services started at the same moment, as separate processes, before their PostgreSQL
// and their Kafka answer (the user's report: one of five stayed unhealthy after "This server does
// not host this topic-partition"): each reports what it waits for on /health (503), then, once
// the database and the broker come up, all migrate (one at a time, under the advisory lock) and
// create the topics (concurrently, waiting for leaders) and become healthy.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DataSource } from 'typeorm';
import { openDatabase } from '@dsu/persistence';
import { provideKafka, providePostgres, type KafkaForSuite, type PostgresForSuite } from '@dsu/testing';
import { makeTempDir, removeDir } from './support/fixtures';
import { freePort, startService, stopAllServices, waitFor } from './support/pipeline-services';
import { lateServer, type LateServer } from './support/tcp-forward';

jest.setTimeout(240_000);

const SERVICES = ['gateway', 'compiler', 'patcher', 'checker', 'applier'] as const;

let kafka: KafkaForSuite;
let pg: PostgresForSuite;
let work = '';
const late: LateServer[] = [];
let ds: DataSource | undefined;

beforeAll(async () => {
  [kafka, pg] = await Promise.all([provideKafka('startup'), providePostgres('startup')]);
  work = makeTempDir('dsu-e2e-startup-');
}, 180_000);

afterAll(async () => {
  await stopAllServices();
  await Promise.all(late.map((l) => l.close()));
  await ds?.destroy();
  await kafka?.cleanup();
  await pg?.cleanup();
  if (work) removeDir(work);
});

async function health(port: number): Promise<{ status: number; body: { status?: string; detail?: string } }> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return { status: res.status, body: (await res.json()) as { status?: string; detail?: string } };
  } catch {
    return { status: 0, body: {} };
  }
}

describe('start-up against infrastructure that is not there yet', () => {
  it('five services started at once wait for PostgreSQL and Kafka, then all become healthy', async () => {
    const [pgPort, kafkaPort] = [await freePort(), await freePort()];
    const [pgLate, kafkaLate] = [lateServer(pgPort), lateServer(kafkaPort)];
    late.push(pgLate, kafkaLate);
    const dbUrl = new URL(pg.databaseUrl);
    const pgTarget = `${dbUrl.hostname}:${dbUrl.port || 5432}`;
    dbUrl.hostname = '127.0.0.1';
    dbUrl.port = String(pgPort);
    const home = path.join(work, 'home');
    const runDir = path.join(work, 'run');
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const ports: Record<string, number> = {};
    for (const s of SERVICES) ports[s] = await freePort();
    const env: NodeJS.ProcessEnv = {
      KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`,
      KAFKA_TOPIC_PREFIX: kafka.topicPrefix,
      KAFKA_TOPIC_PARTITIONS: '3',
      DSU_GROUP_PREFIX: kafka.topicPrefix,
      DATABASE_URL: dbUrl.toString(),
      DSU_HOME: home,
      DSU_RUN_DIR: runDir,
      DSU_HOST_ID: 'startup-host',
      DSU_HEARTBEAT_MS: '500',
      ...Object.fromEntries(SERVICES.map((s) => [`DSU_${s.toUpperCase()}_PORT`, String(ports[s])])),
    };
    const started = Promise.all(SERVICES.map((s) => startService(s, env, work, s, 180_000)));
    started.catch(() => undefined); // awaited below; a failure must not be an unhandled rejection meanwhile

    // Neither is up: every service answers its readiness probe, with what it waits for.
    for (const s of SERVICES)
      await waitFor(
        `${s} to report waiting for PostgreSQL`,
        async () => {
          const h = await health(ports[s]);
          return h.status === 503 && h.body.detail === 'waiting for PostgreSQL';
        },
        60_000,
        100,
      );
    await pgLate.open(pgTarget);
    await waitFor(
      'a service to report waiting for Kafka',
      async () => {
        const hs = await Promise.all(SERVICES.map((s) => health(ports[s])));
        return hs.some((h) => h.status === 503 && h.body.detail === 'waiting for Kafka');
      },
      60_000,
      100,
    );
    await kafkaLate.open(kafka.brokers[0]);

    const procs = await started;
    for (const s of SERVICES)
      await waitFor(`${s} to be healthy`, async () => (await health(ports[s])).status === 200, 30_000, 100);
    for (const p of procs) expect(p.child.exitCode).toBeNull();
    // Each migration ran exactly once, although five services found the database empty together.
    ds = await openDatabase({ databaseUrl: pg.databaseUrl });
    const ran = (await ds.query('SELECT name FROM migrations')) as { name: string }[];
    expect(ran.length).toBeGreaterThan(0);
    expect(new Set(ran.map((r) => r.name)).size).toBe(ran.length);
    // kafkajs logs its own connection retries (level ERROR) meanwhile; the services log no error,
    // and no consumer crashed on a partition without a leader (it was waited for instead).
    for (const p of procs) expect(p.log()).not.toMatch(/"level":"(error|fatal)"|\[Consumer\] Crash/);
  });
});
