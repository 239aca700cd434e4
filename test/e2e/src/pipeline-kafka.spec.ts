// The update pipeline over a real Kafka broker and a real PostgreSQL: gateway, compiler,
// patcher and checker as separate processes, two appliers standing for two hosts (each with its
// own run directory), three running pollserver processes under client load. Every process moves
// to v2, every step is in the database; the checker is killed mid-pipeline and restarted and
// v3 still rolls out with nothing applied twice; malformed and unknown-version events land in
// the dead-letter topic while the consumers go on.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { createEvent, KafkaBus, Topics } from '@dsu/events';
import { openDatabase } from '@dsu/persistence';
import { provideKafka, providePostgres, type KafkaForSuite, type PostgresForSuite } from '@dsu/testing';
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
import { startLoad, type LoadRun } from './support/load-client';
import {
  freePort,
  getJson,
  getText,
  localToken,
  startService,
  stopAllServices,
  waitFor,
  type ServiceProcess,
} from './support/pipeline-services';
import { startOtlpReceiver, type OtlpReceiver } from './support/otlp-receiver';
import { parseExposition, total } from './support/prometheus';

jest.setTimeout(600_000);

const PROGRAM = 'pollserver';
const HOSTS = { 'host-a': 2, 'host-b': 1 } as const;
const script = [
  { send: 'SET k{c} v{i}', expect: 'OK' },
  { send: 'GET k{c}', expect: { regex: 'v\\d+' } },
  { send: 'VERSION', expect: ['pollserver 1', 'pollserver 2', 'pollserver 3'] },
  { send: 'GET missing', expect: ['NOT_FOUND', 'NOT_FOUND missing'] },
] as const;

let kafka: KafkaForSuite;
let pg: PostgresForSuite;
let work = '';
let gateway = '';
let common: NodeJS.ProcessEnv = {};
let ds: DataSource;
let checker: ServiceProcess;
let otlp: OtlpReceiver;
/** Each service process's HTTP base URL (its /metrics), by label: gateway, compiler, ..., applier-host-a. */
const serviceUrls = new Map<string, string>();
const servers: { host: string; server: RunningServer; runDir: string }[] = [];

// The CLI runs as an operator elsewhere would: its own DSU_HOME, and the gateway's admin token.
let adminToken = '';
const cli = (args: string[]) =>
  dsu(args, { DSU_GATEWAY: gateway, DSU_HOME: path.join(work, 'cli-home'), DSU_TOKEN: adminToken });

beforeAll(async () => {
  [kafka, pg] = await Promise.all([provideKafka('pipeline'), providePostgres('pipeline')]);
  work = makeTempDir('dsu-e2e-pipeline-');
  otlp = await startOtlpReceiver();
  const port = await freePort();
  gateway = `http://127.0.0.1:${port}`;
  const shared = path.join(work, 'services-home');
  common = {
    KAFKA_BROKERS: kafka.brokers.join(','),
    KAFKA_TOPIC_PREFIX: kafka.topicPrefix,
    KAFKA_TOPIC_PARTITIONS: '2',
    KAFKA_SESSION_TIMEOUT_MS: '8000',
    DSU_GROUP_PREFIX: kafka.topicPrefix,
    DATABASE_URL: pg.databaseUrl,
    DSU_HOME: shared,
    DSU_HEARTBEAT_MS: '500',
    DSU_TRUSTED_KEY: path.join(shared, 'keys', 'checker-ed25519.pub.pem'),
    DSU_GATEWAY_PORT: String(port),
    // Every service exports its spans over OTLP, promptly.
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
  // Each service on a port of its own, so each one's /metrics can be scraped.
  serviceUrls.set('gateway', gateway);
  for (const name of ['compiler', 'patcher', 'checker']) {
    const p = await freePort();
    common[`DSU_${name.toUpperCase()}_PORT`] = String(p);
    serviceUrls.set(name, `http://127.0.0.1:${p}`);
  }
  // The gateway first, so the migrations run once before the others connect.
  await startService('gateway', common, work);
  adminToken = localToken(common);
  // The appliers download bundles with a read-only token of their own.
  const appliers = await cli(['token', 'create', '--name', 'appliers', '--scopes', 'read']);
  expect(appliers).toMatchObject({ code: 0, json: { scopes: ['read'] } });
  await Promise.all([startService('compiler', common, work), startService('patcher', common, work)]);
  checker = await startService('checker', common, work);
  for (const host of Object.keys(HOSTS)) {
    const runDir = path.join(work, host, 'run');
    fs.mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const applierPort = await freePort();
    serviceUrls.set(`applier-${host}`, `http://127.0.0.1:${applierPort}`);
    // Each applier is its own host: own home and run directory, bundles downloaded from the gateway.
    await startService(
      'applier',
      {
        ...common,
        DSU_APPLIER_PORT: String(applierPort),
        DSU_HOST_ID: host,
        DSU_RUN_DIR: runDir,
        DSU_HOME: path.join(work, host, 'home'),
        DSU_ARTIFACTS_URL: gateway,
        DSU_ARTIFACTS_TOKEN: appliers.json.token as string,
      },
      work,
      `applier-${host}`,
    );
  }
  ds = await openDatabase({ databaseUrl: pg.databaseUrl });
}, 300_000);

afterAll(async () => {
  await stopAllServers();
  await stopAllServices();
  await ds?.destroy();
  await kafka?.cleanup();
  await pg?.cleanup();
  await otlp?.close();
  if (work) removeDir(work);
});

async function rows<T>(sql: string, params: unknown[] = []): Promise<T[]> {
  return ds.query(sql, params);
}

function loadAll(): LoadRun[] {
  return servers.map(({ server }) =>
    startLoad({ port: server.port, clients: 3, durationMs: 300_000, script }),
  );
}

async function inventoryShowsAll(version: string): Promise<boolean> {
  const hosts = await getJson<{ host: string; processes: { pid: number; version: string | null }[] }[]>(
    `${gateway}/inventory`,
  );
  const procs = hosts.flatMap((h) => h.processes);
  return servers.every((s) => procs.some((p) => p.pid === s.server.pid && p.version === version));
}

async function patchesOf(pid: number, runDir: string): Promise<string[]> {
  return (await withControl(pid, runDir, (c) => c.status())).patches.map((p) => p.id);
}

describe('the pipeline over Kafka and PostgreSQL', () => {
  it('builds v1 and v2, patches and checks, and rolls v2 out to every process on both hosts under load', async () => {
    const v1 = await cli([
      'submit',
      fixtureSourceDir(PROGRAM, 'v1'),
      '--program',
      PROGRAM,
      '--version',
      'v1',
      '--update-point',
      'serve:loop',
    ]);
    expect(v1).toMatchObject({
      code: 0,
      json: {
        program: PROGRAM,
        version: 'v1',
        build: { status: 'built', buildId: expect.any(String) },
        patch: null,
      },
    });

    for (const [host, count] of Object.entries(HOSTS)) {
      const dir = path.join(work, host, 'installed');
      expect((await cli(['install', PROGRAM, 'v1', '--out', dir])).code).toBe(0);
      const runDir = path.join(work, host, 'run');
      for (let i = 0; i < count; i++)
        servers.push({
          host,
          runDir,
          server: await startServer(path.join(dir, PROGRAM), { env: { DSU_RUN_DIR: runDir } }),
        });
    }
    await waitFor('both appliers to report every process on v1', () => inventoryShowsAll('v1'));

    const loads = loadAll();
    const v2 = await cli([
      'submit',
      fixtureSourceDir(PROGRAM, 'v2'),
      '--program',
      PROGRAM,
      '--version',
      'v2',
      '--update-point',
      'serve:loop',
    ]);
    expect(v2).toMatchObject({
      code: 0,
      json: {
        build: { status: 'built' },
        patch: { id: expect.stringMatching(/^[0-9a-f]{64}$/), verdict: 'approved' },
      },
    });
    const patchId = (v2.json.patch as { id: string }).id;

    const r = await cli(['rollout', PROGRAM, '--to', 'v2']);
    const results = await Promise.all(loads.map((l) => l.stop()));
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ rolloutId: expect.any(String), patchId });
    const got = (r.json.results as { host: string; pid: number; outcome: string }[])
      .map((x) => `${x.host}:${x.pid}:${x.outcome}`)
      .sort();
    expect(got).toEqual(servers.map((s) => `${s.host}:${s.server.pid}:applied`).sort());
    for (const lr of results) {
      expect(lr.ok).toBeGreaterThan(0);
      expect({
        failed: lr.failed,
        wrong: lr.wrong,
        samples: [...lr.failureSamples, ...lr.wrongSamples],
      }).toEqual({ failed: 0, wrong: 0, samples: [] });
    }
    for (const s of servers) expect(await patchesOf(s.server.pid, s.runDir)).toEqual([patchId]);

    // Every step is in PostgreSQL.
    expect(
      await rows(`SELECT version, status FROM versions WHERE program = $1 ORDER BY seq`, [PROGRAM]),
    ).toEqual([
      { version: 'v1', status: 'built' },
      { version: 'v2', status: 'built' },
    ]);
    expect(await rows(`SELECT from_version, to_version, status, patch_id FROM patches`)).toEqual([
      { from_version: 'v1', to_version: 'v2', status: 'generated', patch_id: patchId },
    ]);
    expect(await rows(`SELECT patch_id, verdict FROM verdicts`)).toEqual([
      { patch_id: patchId, verdict: 'approved' },
    ]);
    expect(await rows(`SELECT id, status FROM rollouts`)).toEqual([
      { id: r.json.rolloutId, status: 'completed' },
    ]);
    // ... and so is who did it: the admin token's user submitted and rolled out, the checker approved.
    const audit = await rows<{ action: string; target: string; actor_name: string; outcome: string }>(
      `SELECT action, target, actor_name, outcome FROM audit_log WHERE program = $1 ORDER BY seq`,
      [PROGRAM],
    );
    const local = expect.stringMatching(/^local:/);
    expect(audit).toEqual([
      { action: 'program.register', target: null, actor_name: local, outcome: 'created' },
      { action: 'version.submit', target: 'v1', actor_name: local, outcome: 'accepted' },
      { action: 'version.submit', target: 'v2', actor_name: local, outcome: 'accepted' },
      {
        action: 'patch.verdict',
        target: patchId,
        actor_name: expect.stringMatching(/^checker/),
        outcome: 'approved',
      },
      { action: 'rollout.request', target: 'v2', actor_name: local, outcome: 'accepted' },
    ]);
    expect(JSON.stringify(await rows(`SELECT * FROM api_tokens`))).not.toContain(adminToken);
    expect(await rows(`SELECT host, pid, outcome FROM update_results ORDER BY host, pid`)).toEqual(
      servers
        .map((s) => ({ host: s.host, pid: s.server.pid, outcome: 'applied' }))
        .sort((a, b) => a.host.localeCompare(b.host) || a.pid - b.pid),
    );
    const consumed = await rows<{ consumer: string; type: string }>(
      `SELECT consumer, type FROM processed_events`,
    );
    for (const [consumer, type] of [
      ['compiler', 'dsu.build.requested.v1'],
      ['patcher', 'dsu.patch.requested.v1'],
      ['checker', 'dsu.patch.generated.v1'],
      ['gateway', 'dsu.patch.verdict.v1'],
      ['gateway', 'dsu.update.result.v2'],
      ['applier.host-a', 'dsu.update.command.v1'],
      ['applier.host-b', 'dsu.update.command.v1'],
    ]) {
      expect(consumed).toContainEqual({ consumer, type });
    }
    await waitFor(
      'the outboxes to drain',
      async () =>
        (await rows<{ n: string }>(`SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL`))[0].n === '0',
    );
  });

  it('sends a malformed event and an unknown schema version to the dead-letter topic, and the consumers go on', async () => {
    const bus = new KafkaBus({
      brokers: kafka.brokers,
      clientId: 'e2e-injector',
      topicPrefix: kafka.topicPrefix,
    });
    try {
      await bus.publishRaw(Topics.patchGenerated, Buffer.from('{"specversion":"1.0","id":"broken"'), PROGRAM);
      await bus.publish(
        Topics.patchGenerated,
        createEvent({
          type: 'dsu.patch.generated.v7',
          source: 'e2e',
          data: { program: PROGRAM, patchId: 'x', hologram: true },
        }),
        PROGRAM,
      );
    } finally {
      await bus.close();
    }
    const letters: { topic: string; group: string; error: string }[] = [];
    const consumer = new Kafka({
      clientId: 'e2e-dlq',
      brokers: kafka.brokers,
      logLevel: logLevel.NOTHING,
    }).consumer({ groupId: `${kafka.topicPrefix}.dlq-reader` });
    await consumer.connect();
    await consumer.subscribe({ topic: `${kafka.topicPrefix}.${Topics.deadLetter}`, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => void letters.push(JSON.parse(message.value?.toString() ?? '{}')),
    });
    try {
      await waitFor(
        'both letters from the checker',
        async () => letters.filter((l) => l.group === `${kafka.topicPrefix}.checker`).length >= 2,
        60_000,
      );
    } finally {
      await consumer.disconnect();
    }
    const mine = letters.filter((l) => l.group === `${kafka.topicPrefix}.checker`);
    expect(mine).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ topic: Topics.patchGenerated, error: expect.stringMatching(/not JSON/) }),
        expect.objectContaining({
          topic: Topics.patchGenerated,
          error: expect.stringMatching(/unknown schema version.*dsu.patch.generated.v7/),
        }),
      ]),
    );
    // The checker keeps consuming: the next test's v3 gets its verdict from it.
  });

  it('follows version v2 in one trace from its submit through build, patch, check and its rollout, across the five services', async () => {
    const submit = await waitFor("the span of v2's submit", async () =>
      otlp.spans.find((s) => s.name === 'dsu submit' && s.attributes['dsu.version'] === 'v2'),
    );
    expect(submit).toMatchObject({ service: 'dsu-gateway', parentSpanId: '' });
    const services = ['dsu-gateway', 'dsu-compiler', 'dsu-patcher', 'dsu-checker', 'dsu-applier'];
    const inTrace = () => otlp.spans.filter((s) => s.traceId === submit.traceId);
    await waitFor('spans of every service in the trace', async () =>
      services.every((svc) => inTrace().some((s) => s.service === svc)),
    );
    const names = new Set(inTrace().map((s) => `${s.service} ${s.name}`));
    for (const step of [
      'dsu-compiler dsu.build.requested process',
      'dsu-gateway dsu.build.completed process',
      'dsu-patcher dsu.patch.requested process',
      'dsu-checker dsu.patch.generated process',
      'dsu-gateway dsu.patch.verdict process',
      'dsu-gateway dsu rollout',
      'dsu-gateway dsu.rollout.requested process',
      'dsu-applier dsu.update.command process',
      'dsu-gateway dsu.update.result process',
    ])
      expect({ step, found: names.has(step) }).toEqual({ step, found: true });
    // Every span but the root has its parent in the trace: nothing is cut off between services.
    const ids = new Set(inTrace().map((s) => s.spanId));
    expect(inTrace().filter((s) => s.parentSpanId && !ids.has(s.parentSpanId))).toEqual([]);
    // v1's submit is a trace of its own.
    const v1 = otlp.spans.find((s) => s.name === 'dsu submit' && s.attributes['dsu.version'] === 'v1');
    expect(v1?.traceId).toBeDefined();
    expect(v1?.traceId).not.toBe(submit.traceId);
  });

  it("serves each service's own Prometheus series at /metrics and reports ready against Kafka and PostgreSQL", async () => {
    const scrape = async (label: string) =>
      parseExposition(await getText(`${serviceUrls.get(label)}/metrics`));
    const [gw, compiler, patcher, checkerM] = await Promise.all(
      ['gateway', 'compiler', 'patcher', 'checker'].map(scrape),
    );
    const group = (service: string) => `${kafka.topicPrefix}.${service}`;
    expect(
      total(compiler, 'dsu_stage_duration_seconds_count', { stage: 'build', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      total(patcher, 'dsu_stage_duration_seconds_count', { stage: 'patch', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      total(checkerM, 'dsu_stage_duration_seconds_count', { stage: 'check', outcome: 'ok' }),
    ).toBeGreaterThanOrEqual(1);
    // The previous test's two bad events, dead-lettered by each group that reads the topic (the
    // checker and the gateway), each counting its own; the compiler never saw them.
    for (const [m, service] of [
      [checkerM, 'checker'],
      [gw, 'gateway'],
    ] as const)
      expect({
        service,
        n: total(m, 'dsu_events_dead_lettered_total', {
          topic: Topics.patchGenerated,
          group: group(service),
        }),
      }).toEqual({ service, n: 2 });
    expect(total(compiler, 'dsu_events_dead_lettered_total')).toBe(0);
    expect(
      total(compiler, 'dsu_events_consumed_total', { topic: Topics.buildRequested, outcome: 'handled' }),
    ).toBeGreaterThanOrEqual(2);
    expect(total(gw, 'dsu_events_produced_total', { topic: Topics.buildRequested })).toBeGreaterThanOrEqual(
      2,
    );
    expect(
      total(gw, 'dsu_events_consumed_total', { topic: Topics.updateResult, group: group('gateway') }),
    ).toBeGreaterThan(0);
    // Consumer lag from the broker's offsets: the series exist per group and topic, and drain to 0.
    await waitFor('the compiler to have no lag on its topic', async () => {
      const m = await scrape('compiler');
      return (
        m.some((x) => x.name === 'dsu_consumer_lag' && x.labels.group === group('compiler')) &&
        total(m, 'dsu_consumer_lag', { group: group('compiler') }) === 0
      );
    });
    for (const [host, count] of Object.entries(HOSTS)) {
      const m = await scrape(`applier-${host}`);
      expect({ host, applied: total(m, 'dsu_applies_total', { outcome: 'applied' }) }).toEqual({
        host,
        applied: count,
      });
      expect(total(m, 'dsu_update_pause_seconds_count', { outcome: 'applied' })).toBe(count);
      expect(total(m, 'dsu_events_produced_total', { topic: Topics.agentHeartbeat })).toBeGreaterThan(0);
      expect(total(gw, 'dsu_fleet_processes', { host, program: PROGRAM })).toBe(count);
    }
    for (const url of serviceUrls.values()) {
      const ready = await fetch(`${url}/health/ready`);
      expect({ url, status: ready.status, body: await ready.json() }).toMatchObject({
        url,
        status: 200,
        body: {
          details: { database: { status: 'up', kind: 'postgres' }, broker: { status: 'up', kind: 'kafka' } },
        },
      });
    }
  });

  it("serves the dashboard and its live feed from PostgreSQL: the rollout and both hosts' processes", async () => {
    const page = await fetch(`${gateway}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<title>dsu dashboard<\/title>/);
    const res = await fetch(`${gateway}/stream`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const topics = new Map<string, unknown>();
    let buf = '';
    while (topics.size < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += Buffer.from(value).toString('utf8');
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const type = /^event: ?(.*)$/m.exec(block)?.[1];
        const data = /^data: ?(.*)$/m.exec(block)?.[1];
        if (type && data) topics.set(type, JSON.parse(data));
      }
    }
    await reader.cancel();
    const rollouts = topics.get('rollouts') as { version: string; status: string }[];
    expect(rollouts.some((r) => r.version === 'v2' && r.status === 'completed')).toBe(true);
    const fleet = topics.get('fleet') as { hosts: { host: string; processes: unknown[] }[] };
    for (const [host, count] of Object.entries(HOSTS))
      expect(fleet.hosts.find((h) => h.host === host)?.processes).toHaveLength(count);
  });

  it('completes when the checker is killed mid-pipeline and restarted, and applies nothing twice', async () => {
    const loads = loadAll();
    const submit = cli([
      'submit',
      fixtureSourceDir(PROGRAM, 'v3'),
      '--program',
      PROGRAM,
      '--version',
      'v3',
      '--update-point',
      'serve:loop',
    ]);
    // Crash the checker as soon as it has the patch to judge (the verdict is not in yet).
    await waitFor(
      'the v2->v3 patch',
      async () =>
        (await rows(`SELECT 1 FROM patches WHERE to_version = 'v3' AND status = 'generated'`)).length > 0,
      300_000,
      50,
    );
    await checker.stop('SIGKILL');
    checker = await startService('checker', common, work, 'checker-restarted');
    const v3 = await submit;
    expect(v3).toMatchObject({
      code: 0,
      json: { build: { status: 'built' }, patch: { verdict: 'approved' } },
    });
    const patchId = (v3.json.patch as { id: string }).id;
    expect(await rows(`SELECT verdict FROM verdicts WHERE patch_id = $1`, [patchId])).toEqual([
      { verdict: 'approved' },
    ]);

    await waitFor('both appliers to report every process on v2', () => inventoryShowsAll('v2'));
    const r = await cli(['rollout', PROGRAM, '--to', 'v3']);
    const results = await Promise.all(loads.map((l) => l.stop()));
    expect(r.code).toBe(0);
    expect((r.json.results as { outcome: string }[]).map((x) => x.outcome)).toEqual(
      servers.map(() => 'applied'),
    );
    for (const lr of results) expect({ failed: lr.failed, wrong: lr.wrong }).toEqual({ failed: 0, wrong: 0 });
    // Each process carries each patch exactly once, and the registry has one result per process and rollout.
    for (const s of servers) {
      const ids = await patchesOf(s.server.pid, s.runDir);
      expect(ids).toHaveLength(2);
      expect(ids[1]).toBe(patchId);
    }
    expect(await rows(`SELECT count(*) AS n FROM update_results WHERE patch_id = $1`, [patchId])).toEqual([
      { n: String(servers.length) },
    ]);

    // Rolling out v3 again targets nobody: every process already runs it.
    const again = await cli(['rollout', PROGRAM, '--to', 'v3']);
    expect(again).toMatchObject({
      code: 1,
      json: { error: { code: 'nothing-to-update', message: expect.stringMatching(/already run v3/) } },
    });
    const allowed = await cli(['rollout', PROGRAM, '--to', 'v3', '--allow-empty']);
    expect(allowed).toMatchObject({ code: 0, json: { status: 'completed', results: [] } });
  });
});
