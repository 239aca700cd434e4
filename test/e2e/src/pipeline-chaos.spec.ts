// Chaos on real Kafka + PostgreSQL: while a rollout to three processes on two hosts waits for its
// patch, every service is killed (-9) and restarted in turn, and the Kafka broker is stopped and
// started again once (same data and port: tools/kafka/stop --keep, KAFKA_RESUME=1 start). The
// rollout completes, no process is updated twice, every committed event reached its consumers,
// and the dead-letter topic holds only the malformed events the test injected.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { KafkaBus, Topics } from '@dsu/events';
import { openDatabase } from '@dsu/persistence';
import { providePostgres, type PostgresForSuite } from '@dsu/testing';
import { withControl } from '@dsu/control-client';
import { dsu } from './support/dsu-cli';
import {
  fixtureSourceDir,
  makeTempDir,
  removeDir,
  startServer,
  stopAllServers,
  type RunningServer,
} from './support/fixtures';
import {
  freePort,
  getJson,
  localToken,
  startService,
  stopAllServices,
  waitFor,
  type ServiceProcess,
} from './support/pipeline-services';

jest.setTimeout(300_000);

const ROOT = path.resolve(__dirname, '../../..');
const PROGRAM = 'pollserver';
const PREFIX = 'chaos';

let pg: PostgresForSuite;
let work = '';
let kafkaState = '';
let brokers = '';
let ds: DataSource;

/** This suite's own broker (the shared one must not be restarted under other suites). */
function kafkaStart(resume: boolean): string {
  const out = execFileSync(path.join(ROOT, 'tools/kafka/start'), [], {
    env: { ...process.env, KAFKA_STATE_DIR: kafkaState, ...(resume ? { KAFKA_RESUME: '1' } : {}) },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return /KAFKA_BROKERS=(\S+)\s*$/.exec(out)?.[1] ?? '';
}

beforeAll(async () => {
  work = makeTempDir('dsu-e2e-chaos-');
  kafkaState = path.join(work, 'kafka');
  [pg, brokers] = await Promise.all([
    providePostgres('chaos'),
    Promise.resolve().then(() => kafkaStart(false)),
  ]);
  ds = await openDatabase({ databaseUrl: pg.databaseUrl });
}, 180_000);

afterAll(async () => {
  await stopAllServers();
  await stopAllServices();
  await ds?.destroy();
  await pg?.cleanup();
  if (kafkaState) execFileSync(path.join(ROOT, 'tools/kafka/stop'), [kafkaState], { stdio: 'ignore' });
  if (work && !process.env.DSU_E2E_KEEP) removeDir(work);
});

describe('chaos: services and the broker killed during a rollout', () => {
  it('the rollout completes, nothing is applied twice, no event is lost, only injected events are dead letters', async () => {
    const port = await freePort();
    const gateway = `http://127.0.0.1:${port}`;
    const home = path.join(work, 'home');
    const common: NodeJS.ProcessEnv = {
      KAFKA_BROKERS: brokers,
      KAFKA_TOPIC_PREFIX: PREFIX,
      KAFKA_TOPIC_PARTITIONS: '2',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      DSU_GROUP_PREFIX: PREFIX,
      DATABASE_URL: pg.databaseUrl,
      DSU_HOME: home,
      DSU_HEARTBEAT_MS: '500',
      DSU_TRUSTED_KEY: path.join(home, 'keys', 'checker-ed25519.pub.pem'),
      DSU_GATEWAY_PORT: String(port),
      DSU_COMPILER_PORT: '0',
      DSU_PATCHER_PORT: '0',
      DSU_CHECKER_PORT: '0',
      DSU_APPLIER_PORT: '0',
    };
    const hostEnv = (host: string) => ({
      ...common,
      DSU_HOST_ID: host,
      DSU_RUN_DIR: path.join(work, host, 'run'),
      DSU_HOME: path.join(work, host, 'home'),
      DSU_ARTIFACTS_URL: gateway,
    });
    const envOf: Record<string, NodeJS.ProcessEnv> = {
      gateway: common,
      compiler: common,
      patcher: common,
      checker: common,
      'applier-a': hostEnv('host-a'),
      'applier-b': hostEnv('host-b'),
    };
    const procs: Record<string, ServiceProcess> = {};
    const start = async (name: string, label = name) =>
      (procs[name] = await startService(name.replace(/-[ab]$/, ''), envOf[name], work, label));
    await start('gateway');
    const token = localToken(common);
    for (const h of ['host-a', 'host-b']) {
      fs.mkdirSync(path.join(work, h, 'run'), { recursive: true, mode: 0o700 });
      Object.assign(envOf[`applier-${h.slice(-1)}`], { DSU_ARTIFACTS_TOKEN: token });
    }
    await Promise.all(['compiler', 'patcher', 'checker', 'applier-a', 'applier-b'].map((n) => start(n)));
    const cli = (args: string[]) =>
      dsu(args, { DSU_GATEWAY: gateway, DSU_HOME: path.join(work, 'cli'), DSU_TOKEN: token });
    const submit = (v: string) =>
      cli([
        'submit',
        fixtureSourceDir(PROGRAM, v),
        '--program',
        PROGRAM,
        '--version',
        v,
        '--update-point',
        'serve:loop',
      ]);

    expect((await submit('v1')).json).toMatchObject({ build: { status: 'built' } });
    expect((await cli(['install', PROGRAM, 'v1', '--out', path.join(work, 'v1')])).code).toBe(0);
    const servers: { host: string; runDir: string; server: RunningServer }[] = [];
    for (const host of ['host-a', 'host-a', 'host-b']) {
      const runDir = path.join(work, host, 'run');
      servers.push({
        host,
        runDir,
        server: await startServer(path.join(work, 'v1', PROGRAM), { env: { DSU_RUN_DIR: runDir } }),
      });
    }
    await waitFor('the inventory to list the three processes', async () => {
      const pids = (await getJson<{ processes: { pid: number }[] }[]>(`${gateway}/inventory`)).flatMap((h) =>
        h.processes.map((p) => p.pid),
      );
      return servers.every((s) => pids.includes(s.server.pid));
    });

    // Malformed events, injected on the topics of every consumer, must end as dead letters only.
    const injector = new KafkaBus({ brokers: [brokers], clientId: 'chaos-injector', topicPrefix: PREFIX });
    const injected = [
      Topics.buildRequested,
      Topics.patchRequested,
      Topics.patchGenerated,
      Topics.updateResult,
    ];
    for (const t of injected) await injector.publishRaw(t, Buffer.from(`{"chaos":"${t}"`), PROGRAM);
    await injector.close();

    // v2 built, the rollout starts while its patch is being made; then the chaos.
    const submitted = submit('v2');
    await waitFor(
      'v2 to be built',
      async () =>
        (await getJson<{ status: string }>(`${gateway}/programs/${PROGRAM}/versions/v2`).catch(() => null))
          ?.status === 'built',
      120_000,
      50,
    );
    const rollout = cli(['rollout', PROGRAM, '--to', 'v2']);
    for (const name of ['patcher', 'checker', 'broker', 'gateway', 'compiler', 'applier-a', 'applier-b']) {
      if (name === 'broker') {
        execFileSync(path.join(ROOT, 'tools/kafka/stop'), ['--keep', kafkaState], { stdio: 'ignore' });
        expect(kafkaStart(true)).toBe(brokers);
        continue;
      }
      await procs[name].stop('SIGKILL');
      await start(name, `${name}-restarted`);
    }
    const r = await rollout;
    expect(r).toMatchObject({
      json: { status: 'completed', notes: [], results: servers.map(() => ({ outcome: 'applied' })) },
    });
    await submitted; // it waited for the restarted gateway; the version's patch tells
    expect(await getJson(`${gateway}/programs/${PROGRAM}/versions/v2`)).toMatchObject({
      patch: { status: 'generated', verdict: 'approved' },
    });

    // Each process carries the one patch once; one result per process.
    const [patch] = await ds.query(`SELECT patch_id FROM patches WHERE to_version = 'v2'`);
    for (const s of servers)
      expect((await withControl(s.server.pid, s.runDir, (c) => c.status())).patches.map((p) => p.id)).toEqual(
        [patch.patch_id],
      );
    expect(await ds.query(`SELECT count(*)::int AS n FROM update_results`)).toEqual([{ n: servers.length }]);

    // No event lost: every committed event was published and handled by its consumer.
    await waitFor(
      'the outboxes to drain',
      async () => (await ds.query(`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`))[0].n === 0,
    );
    const consumers: Record<string, (key: string) => string[]> = {
      [Topics.buildRequested]: () => ['compiler'],
      [Topics.buildCompleted]: () => ['gateway'],
      [Topics.patchRequested]: () => ['patcher'],
      [Topics.patchGenerated]: () => ['checker', 'gateway'],
      [Topics.patchVerdict]: () => ['gateway'],
      [Topics.rolloutRequested]: () => ['gateway'],
      [Topics.updateCommand]: (host) => [`applier.${host}`],
      [Topics.updateResult]: () => ['gateway'],
    };
    const outbox: { id: string; topic: string; key: string }[] = await ds.query(
      `SELECT id, topic, message_key AS key FROM outbox`,
    );
    const handled = new Set(
      (
        (await ds.query(`SELECT consumer, event_id FROM processed_events`)) as {
          consumer: string;
          event_id: string;
        }[]
      ).map((p) => `${p.consumer}/${p.event_id}`),
    );
    const lost = outbox
      .flatMap((o) => (consumers[o.topic]?.(o.key) ?? []).map((c) => `${c}/${o.id}`))
      .filter((x) => !handled.has(x));
    expect(lost).toEqual([]);

    // The dead-letter topic holds exactly the injected messages (one per consumer group of each).
    const letters: { topic: string; payload: string }[] = [];
    const consumer = new Kafka({
      clientId: 'chaos-dlq',
      brokers: [brokers],
      logLevel: logLevel.NOTHING,
    }).consumer({
      groupId: `${PREFIX}.dlq-reader`,
    });
    await consumer.connect();
    await consumer.subscribe({ topic: `${PREFIX}.${Topics.deadLetter}`, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void letters.push(JSON.parse(message.value?.toString() ?? '{}')),
    });
    const expected = injected.reduce((n, t) => n + (t === Topics.patchGenerated ? 2 : 1), 0);
    try {
      await waitFor('the dead letters', async () => letters.length >= expected, 60_000);
      await new Promise((res) => setTimeout(res, 1000)); // nothing else arrives
    } finally {
      await consumer.disconnect();
    }
    expect(letters.every((l) => /^\{"chaos":"/.test(l.payload))).toBe(true);
    expect(letters).toHaveLength(expected);
  });
});
