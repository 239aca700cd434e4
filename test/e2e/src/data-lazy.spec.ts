// Lazy data updates end to end (issue 4, "Lazy transformation"): the datalist fixture (10k heap
// records on a linked list, 16 heap buckets embedding a record, a global registry with 4 records)
// gets `dsu patch --transform lazy` patches. The commit transforms only the global instances;
// every heap and embedded record is transformed by the new code on its first touch (a tag check
// once per pointer per function). Asserted: values survive under client load (checksum over all
// instances through the program's own SUM), the new field holds its default, a 64-bit value
// round-trips, records nobody touched through two updates in a row (v1 -> v2 -> v4) are carried
// through the chain of transformers on their first touch, each instance is transformed exactly
// once per version (STATUS counts first touches), and the pause does not grow with the number of
// instances (200k records: only the 4 globals are transformed in the pause).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers } from './support/fixtures';
import { converse } from './support/line-client';
import { startLoad } from './support/load-client';

let work = '';
let runDir = '';
const dir = (v: string) => path.join(work, 'datalist', v);
let p12 = '';
let p24 = '';

async function build(version: string, extra: string[] = []): Promise<void> {
  const r = await dsu(['build', fixtureSourceDir('datalist', version), '--out', dir(version), '--label', version, '--update-point', 'serve:loop', ...extra]);
  expect(r).toMatchObject({ code: 0, json: { program: 'datalist', version } });
}

const apply = (bundle: string, pid: number, timeoutMs = 5000) =>
  dsu(['apply', bundle, '--pid', String(pid), '--timeout-ms', String(timeoutMs), '--run-dir', runDir]);

async function lazyStatus(pid: number): Promise<{ type: string; version: number; touched: number }[]> {
  const s = await dsu(['status', '--pid', String(pid), '--run-dir', runDir]);
  expect(s.code).toBe(0);
  return s.json.lazyTypes as { type: string; version: number; touched: number }[];
}

beforeAll(async () => {
  work = makeTempDir('dsu-e2e-lazy-');
  runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
  await build('v1');
  await build('v2', ['--layout-from', dir('v1')]);
  await build('v4', ['--layout-from', dir('v1')]);
  p12 = path.join(work, 'p12');
  const a = await dsu(['patch', dir('v1'), dir('v2'), '--out', p12, '--transform', 'lazy']);
  expect(a.code).toBe(0);
  // dsu apply takes only checked, signed bundles: dsu check signs with the local key
  expect(await dsu(['check', p12])).toMatchObject({ code: 0, json: { verdict: 'approved' } });
  // v2 -> v4 lazily through patch.yaml alone (mode per type), with the address transformer
  const spec = path.join(work, 'v2-v4.lazy.yaml');
  fs.writeFileSync(spec, ['types:', '  struct rec:', '    mode: lazy', '    fields:', '      addr: |', '        __builtin_memcpy(n->addr, old, 4);', ''].join('\n'));
  p24 = path.join(work, 'p24');
  const b = await dsu(['patch', dir('v2'), dir('v4'), '--out', p24, '--spec', spec]);
  expect(b.code).toBe(0);
  expect(await dsu(['check', p24])).toMatchObject({ code: 0, json: { verdict: 'approved' } });
}, 300_000);
afterAll(async () => {
  await stopAllServers();
  if (work) removeDir(work);
});

describe('datalist: lazy transformation', () => {
  it('generates tag checks once per pointer in every function of the patch', () => {
    const m = JSON.parse(fs.readFileSync(path.join(p12, 'manifest.json'), 'utf8')) as { types: { name: string; mode: string }[] };
    expect(m.types).toEqual([expect.objectContaining({ name: 'struct rec', mode: 'lazy' })]);
    const m24 = JSON.parse(fs.readFileSync(path.join(p24, 'manifest.json'), 'utf8')) as { types: { name: string; mode: string }[] };
    expect(m24.types).toEqual([expect.objectContaining({ name: 'struct rec', mode: 'lazy' })]);
    const text = fs.readFileSync(path.join(p12, 'units', 'records.c.i'), 'utf8');
    // the list walk checks each node where the pointer gets its value, not at every r->field
    expect(text).toMatch(/for \(r = __dsu_lz_struct_rec\(head\); r != .*; r = __dsu_lz_struct_rec\(r->next\)\)/);
    expect(text).toMatch(/sum \+= .*rec_weight.*\(r\);/);
    // a record embedded in a heap bucket is checked at its use; the global registry's are not
    // (the bucket pointer is checked too: every type with room is, in case it has lazy history)
    expect(text).toContain('(*__dsu_lz_struct_rec(&(__dsu_lz_struct_bucket(buckets[i])->first))).id');
    expect(text).not.toContain('__dsu_lz_struct_rec(&(registry');
  });

  it('transforms on first touch under load: same checksum, new field zero, 64-bit values', async () => {
    const server = await startServer(path.join(dir('v1'), 'datalist'), { env: { DSU_RUN_DIR: runDir } });
    try {
      const before = await converse(server.port, ['SUM', 'VERSION']);
      expect(before[0]).toMatch(/^-?\d+ 10020$/);
      const sum = before[0];
      const load = startLoad({
        port: server.port,
        clients: 4,
        reconnectingClients: 1,
        requestsPerConnection: 5,
        durationMs: 30_000,
        script: [
          { send: 'PING', expect: 'PONG' },
          { send: 'SUM', expect: sum },
          { send: 'GET 42', expect: { regex: '^42 -?\\d+ r42( \\d+)?$' } },
          { send: 'VERSION', expect: ['datalist 1', 'datalist 2'] },
        ],
      });
      await new Promise((r) => setTimeout(r, 500));
      const a = await apply(p12, server.pid);
      // only the 4 records of the global registry are transformed in the pause
      expect(a).toMatchObject({ code: 0, json: { outcome: 'applied', reasons: [], instances: 4, lazyTypes: 1 } });
      expect(await converse(server.port, ['VERSION', 'SUM', 'GET 5', 'GET 1000003', 'GET 2000001'])).toEqual([
        'datalist 2',
        sum,
        '5 -10405 r5 1',
        '1000003 -26243 r3 1',
        '2000001 -42081 r1 1',
      ]);
      await new Promise((r) => setTimeout(r, 300));
      const result = await load.stop();
      expect({ failed: result.failed, wrong: result.wrong, samples: [...result.wrongSamples, ...result.failureSamples] }).toEqual({ failed: 0, wrong: 0, samples: [] });
      expect(result.ok).toBeGreaterThan(100);
      // every heap record (10000 on the list, 16 in buckets) was transformed exactly once
      expect(await lazyStatus(server.pid)).toEqual([{ type: 'struct rec', version: 1, touched: 10016 }]);
      expect(await converse(server.port, ['SETVAL 7 3000000000', 'GET 7'])).toEqual(['OK', '7 3000000000 r7 1']);
      const rb = await dsu(['rollback', '--pid', String(server.pid), '--run-dir', runDir]);
      expect(rb.code).toBe(1);
      expect(JSON.stringify(rb.json)).toMatch(/cannot be rolled back/);
      expect(server.exited()).toBe(false);
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('carries records nobody touched through two updates (v1 -> v2 -> v4) on their first touch', async () => {
    const server = await startServer(path.join(dir('v1'), 'datalist'), { env: { DSU_RUN_DIR: runDir } });
    try {
      const [sum] = await converse(server.port, ['SUM']);
      expect(await apply(p12, server.pid)).toMatchObject({ code: 0, json: { outcome: 'applied', instances: 4 } });
      // GET walks the list from its head (id 9999) to 9990: 10 records touched, the rest sleep
      expect(await converse(server.port, ['GET 9990'])).toEqual([`9990 ${(9990 * 7919) % 100000 - 50000} r9990 1`]);
      expect(await lazyStatus(server.pid)).toEqual([{ type: 'struct rec', version: 1, touched: 10 }]);
      expect(await apply(p24, server.pid)).toMatchObject({ code: 0, json: { outcome: 'applied', instances: 4, lazyTypes: 1 } });
      // record 9 and the buckets' records were never touched in v2: v1 -> v2 -> v4 now
      expect(await converse(server.port, ['VERSION', 'ADDR 9', 'ADDR 1000003', 'ADDR 2000001', 'SUM', 'HITS', 'GET 9990'])).toEqual([
        'datalist 4',
        `${0x0a000009} +0`,
        `${0x0a000000 + 1000003} +0`,
        `${0x0a000000 + 2000001} +0`,
        sum,
        '1',
        `9990 ${(9990 * 7919) % 100000 - 50000} r9990 2`,
      ]);
      // 10 first touches in v2, then every heap record once in v4
      expect(await lazyStatus(server.pid)).toEqual([{ type: 'struct rec', version: 2, touched: 10 + 10016 }]);
      expect(server.exited()).toBe(false);
    } finally {
      await server.stop();
    }
  }, 120_000);

  it('pauses independently of the number of instances', async () => {
    const pauses: Record<number, { pauseUs: number; transformUs: number }> = {};
    for (const n of [1000, 200_000]) {
      const server = await startServer(path.join(dir('v1'), 'datalist'), { env: { DSU_RUN_DIR: runDir, DL_N: String(n) }, readyTimeoutMs: 30_000 });
      try {
        const [sum] = await converse(server.port, ['SUM']);
        const a = await apply(p12, server.pid);
        expect(a).toMatchObject({ code: 0, json: { outcome: 'applied', instances: 4 } });
        pauses[n] = { pauseUs: a.json.pauseUs as number, transformUs: a.json.transformUs as number };
        expect(await converse(server.port, ['SUM'], 60_000)).toEqual([sum]);
      } finally {
        await server.stop();
      }
    }
    // eager transformation of 200k records takes tens of ms; lazy transforms the 4 globals
    expect(pauses[200_000].transformUs).toBeLessThan(1000);
    expect(pauses[1000].transformUs).toBeLessThan(1000);
    expect(pauses[200_000].pauseUs).toBeLessThan(5000);
  }, 180_000);
});
