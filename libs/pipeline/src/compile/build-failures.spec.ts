// A build that goes wrong ends in `dsu.build.failed` with the reason and leaves no work directory
// behind; a version never stays `building` (the registry's deadline ends it); dead letters are
// logged. Run on the embedded default (in-process bus + SQLite) and over a real Kafka broker.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { type CloudEvent, createEvent, currentType, type EventBus, Topics } from '@dsu/events';
import { VersionEntity } from '@dsu/persistence';
import { type KafkaForSuite, provideKafka } from '@dsu/testing';
import { startServices, type RunningServices } from '../pipeline';
import { openInfra } from '../shared/infra';
import type { Registry } from '../registry/registry';

interface Spec {
  path: string;
  type?: string;
  linkpath?: string;
  body?: string;
}
function tgz(entries: Spec[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const block = Buffer.alloc(512);
    new tar.Header({
      path: e.path,
      type: (e.type ?? 'File') as tar.Header['type'],
      linkpath: e.linkpath,
      size: body.length,
      mode: e.type === 'Directory' ? 0o755 : 0o644,
      mtime: new Date(),
    }).encode(block, 0);
    blocks.push(block, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
}
const many = Array.from({ length: 2000 }, (_, i) => ({ path: `more/f${i}.c`, body: `int f${i};\n` }));
/** The reported case: a link, a file written through it, and many files after (today: ENOTEMPTY on cleanup). */
const throughLink = tgz([
  { path: 'sub/', type: 'Directory' },
  { path: 'link', type: 'SymbolicLink', linkpath: 'sub' },
  { path: 'link/evil.c', body: 'int evil;\n' },
  ...many,
]);
const absoluteLink = tgz([
  { path: 'main.c', body: 'int main(void) { return 0; }\n' },
  { path: 'src/config.h', type: 'SymbolicLink', linkpath: '/etc/passwd' },
]);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each([
  ['the embedded default (in-process bus + SQLite)', false],
  ['Kafka (+ SQLite)', true],
])('build failures on %s', (_name, useKafka) => {
  let kafka: KafkaForSuite | undefined;
  let home: string;
  let tmp: string;
  let savedTmp: string | undefined;
  let running: RunningServices;
  let registry: Registry;
  let bus: EventBus;
  const logs: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const seen: { topic: string; event: CloudEvent }[] = [];

  beforeAll(async () => {
    if (useKafka) kafka = await provideKafka('build-failures');
    home = mkdtempSync(join(tmpdir(), 'dsu-build-failures-'));
    // The compiler's work directories go here, so the test sees every one left behind.
    tmp = join(home, 'tmp');
    mkdirSync(tmp);
    savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    const infra = await openInfra('test', {
      DSU_HOME: home,
      DSU_HOST_ID: 'h',
      DSU_RUN_DIR: join(home, 'run'),
      DSU_BUILD_DEADLINE_MS: '1500',
      ...(kafka
        ? {
            KAFKA_BROKERS: kafka.brokers.join(','),
            KAFKA_TOPIC_PREFIX: kafka.topicPrefix,
            KAFKA_TOPIC_PARTITIONS: '1',
          }
        : {}),
      DSU_GROUP_PREFIX: kafka?.topicPrefix ?? 'dsu',
    });
    bus = infra.bus;
    running = await startServices(infra, ['gateway', 'compiler'], (level, msg, fields = {}) =>
      logs.push({ level, msg, fields }),
    );
    registry = running.registry as Registry;
    await bus.subscribe({
      group: `${kafka?.topicPrefix ?? 'dsu'}.probe`,
      topics: [Topics.buildFailed, Topics.buildCompleted],
      handler: async (event, topic) => void seen.push({ topic, event }),
    });
    await registry.registerProgram('p');
  }, 180_000);
  afterAll(async () => {
    await running?.stop();
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
    rmSync(home, { recursive: true, force: true });
    await kafka?.cleanup();
  }, 60_000);

  const request = async (version: string, archive: Buffer) => {
    const { sha256 } = await running.infra.store.put(archive);
    const data = {
      program: 'p',
      version,
      sourceSha256: sha256,
      bin: null,
      updatePoints: [],
      layoutFromModelSha256: null,
    };
    await bus.publish(
      Topics.buildRequested,
      createEvent({ type: currentType(Topics.buildRequested), source: 'test', data }),
      'p',
    );
  };
  const failedFor = (version: string) =>
    waitFor(`build.failed of ${version}`, async () =>
      seen.find(
        (s) => s.topic === Topics.buildFailed && (s.event.data as { version: string }).version === version,
      ),
    );

  it('the compiler re-checks the tree: a file written through a link fails the build once, in plain words, with no directory left', async () => {
    await request('through-link', throughLink);
    const failed = await failedFor('through-link');
    expect((failed.event.data as { error: string }).error).toMatch(
      /^the submitted source was refused: link\/evil\.c would be written through the symbolic link link \(to sub\)/,
    );
    expect(logs.filter((l) => l.msg === 'build started' && l.fields.version === 'through-link')).toHaveLength(
      1,
    );
    expect(logs.filter((l) => l.msg === 'event dead-lettered after retries')).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  it('an absolute link fails without tar jargon', async () => {
    await request('absolute', absoluteLink);
    const failed = await failedFor('absolute');
    const error = (failed.event.data as { error: string }).error;
    expect(error).toMatch(
      /src\/config\.h is a symbolic link to \/etc\/passwd, outside the submitted tree; replace it with the file itself/,
    );
    expect(error).not.toMatch(/TAR_/);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  it('a source artifact changed on disk fails the build saying so', async () => {
    const good = tgz([{ path: 'main.c', body: 'int main(void) { return 0; }\n' }]);
    const { sha256 } = await running.infra.store.put(good);
    const file = running.infra.store.pathOf(sha256);
    chmodSync(file, 0o644);
    writeFileSync(file, tgz([{ path: 'main.c', body: 'int main(void) { return 1; }\n' }]));
    const data = {
      program: 'p',
      version: 'tampered',
      sourceSha256: sha256,
      bin: null,
      updatePoints: [],
      layoutFromModelSha256: null,
    };
    await bus.publish(
      Topics.buildRequested,
      createEvent({ type: currentType(Topics.buildRequested), source: 'test', data }),
      'p',
    );
    const failed = await failedFor('tampered');
    expect((failed.event.data as { error: string }).error).toMatch(
      new RegExp(`^the source artifact ${sha256} is corrupted on disk`),
    );
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  it('the gateway refuses a bad tree at submit time with the reason (400)', async () => {
    await expect(
      registry.submitVersion({ program: 'p', version: 'bad', source: throughLink }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/link\/evil\.c would be written through the symbolic link link/),
    });
    await expect(registry.getVersion('p', 'bad')).rejects.toMatchObject({ status: 404 });
  });

  it('a dead-lettered build request is logged, and the registry ends its version failed at the deadline', async () => {
    // A version whose request the compiler cannot even read (schema-invalid): dead-lettered at once.
    const v = await registry.submitVersion({
      program: 'p',
      version: 'lost',
      source: tgz([{ path: 'main.c', body: 'int main(void) { return 0; }\n' }]),
    });
    await waitFor('the build of lost', async () =>
      seen.some((s) => (s.event.data as { version: string }).version === 'lost'),
    );
    // Stand-in for a request that failed all its retries: the version row without any result.
    await running.infra.ds
      .getRepository(VersionEntity)
      .update({ program: 'p', version: 'lost' }, { status: 'building', error: null });
    await bus.publish(
      Topics.buildRequested,
      createEvent({
        type: currentType(Topics.buildRequested),
        source: 'test',
        data: { program: 'p', version: 'lost' },
      }),
      'p',
    );
    await waitFor('the dead-letter log line', async () =>
      logs.find(
        (l) => l.msg === 'event dead-lettered after retries' && l.fields.topic === Topics.buildRequested,
      ),
    );
    const ended = await waitFor('the deadline to end the version', async () => {
      const now = await registry.getVersion('p', 'lost');
      return now.status === 'failed' && now;
    });
    expect(ended.error).toMatch(
      /^no build result within 1\.5 seconds of the submission \(DSU_BUILD_DEADLINE_MS\)/,
    );
    expect(v.status).toBe('building');
    expect(
      logs.some(
        (l) => l.msg === 'build deadline passed; version ended failed' && l.fields.version === 'lost',
      ),
    ).toBe(true);
  }, 60_000);
});
