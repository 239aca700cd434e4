// Live data updates end to end (issue 4): `dsu build` v1 of the datalist fixture (10k heap
// records on a linked list, 16 heap buckets embedding a record, a global registry with an
// array of 4 records), put it under client load, and apply a patch that adds a field in the
// middle of struct rec and widens `val` from int to long long. Every live instance (heap,
// embedded, global array) must keep its values (same checksum), the new field must hold its
// default, the new layout must run (a value above 2^31 round-trips), and a later version whose
// struct outgrows the reserved room must be refused with the program still serving. A second
// update in a row (v2 -> v4) replaces a 4-byte address by a 16-byte one with a transformer from
// patch.yaml (the old value copied, the rest zero). A second process goes back from v2 to v1 with
// a patch generated the other way (the way back from a data patch, which cannot be rolled back).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers, type RunningServer } from './support/fixtures';
import { converse } from './support/line-client';
import { startLoad } from './support/load-client';

let work = '';
let runDir = '';
beforeAll(() => {
  work = makeTempDir('dsu-e2e-data-');
  runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
});
afterAll(async () => {
  await stopAllServers();
  if (work) removeDir(work);
});

const dir = (v: string) => path.join(work, 'datalist', v);

async function build(version: string, extra: string[] = []): Promise<void> {
  const r = await dsu(['build', fixtureSourceDir('datalist', version), '--out', dir(version), '--label', version, '--update-point', 'serve:loop', ...extra]);
  expect(r).toMatchObject({ code: 0, json: { program: 'datalist', version } });
}

// Bundles applied without `dsu check` (and so with --allow-unsigned): ones the safety analysis
// rejects, applied so that the runtime's own refusal is what the test sees.
const unchecked = new Set<string>();

async function patch(
  from: string,
  to: string,
  extra: string[] = [],
  opts: { check: boolean } = { check: true },
): Promise<{ out: string; json: Record<string, unknown> }> {
  const out = path.join(work, 'datalist', `${from}-${to}`);
  const r = await dsu(['patch', dir(from), dir(to), '--out', out, '--transform', 'eager', ...extra]);
  expect(r.code).toBe(0);
  // dsu apply takes only checked, signed bundles: dsu check signs with the local key
  if (opts.check) expect(await dsu(['check', out])).toMatchObject({ code: 0, json: { verdict: 'approved' } });
  else unchecked.add(out);
  return { out, json: r.json };
}

const apply = (bundle: string, pid: number, timeoutMs = 5000) =>
  dsu([
    'apply',
    bundle,
    '--pid',
    String(pid),
    '--timeout-ms',
    String(timeoutMs),
    '--run-dir',
    runDir,
    ...(unchecked.has(bundle) ? ['--allow-unsigned'] : []),
  ]);

describe('datalist: struct layout change on 10k live heap instances, eager', () => {
  let server: RunningServer;
  let p12 = '';
  let p23 = '';
  let p24 = '';
  let manifest: Record<string, unknown> = {};
  beforeAll(async () => {
    await build('v1');
    // Later versions keep v1's capacities, so their patches fit processes started from v1.
    await build('v2', ['--layout-from', dir('v1')]);
    await build('v3', ['--layout-from', dir('v1')]);
    await build('v4', ['--layout-from', dir('v1')]);
    const p = await patch('v1', 'v2');
    p12 = p.out;
    manifest = JSON.parse(fs.readFileSync(path.join(p12, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    // outgrows its room: dsu check rejects it (capacity); the runtime must refuse it as well
    p23 = (await patch('v2', 'v3', [], { check: false })).out;
    p24 = (await patch('v2', 'v4', ['--spec', path.join(fixtureSourceDir('datalist', 'v1'), '..', 'v2-v4.patch.yaml')])).out;
    server = await startServer(path.join(dir('v1'), 'datalist'), { env: { DSU_RUN_DIR: runDir } });
  }, 240_000);
  afterAll(() => server?.stop());

  it('reserves room, tracks the instances and explains every function of the patch', () => {
    const model = JSON.parse(fs.readFileSync(path.join(dir('v1'), 'datalist.dsu.json'), 'utf8')) as {
      types: Record<string, { size: number; capacity: number; updatable: boolean }>;
    };
    expect(model.types['struct rec']).toMatchObject({ size: 32, capacity: 64, updatable: true });
    const types = manifest.types as { name: string; oldSize: number; newSize: number; capacity: number; fields: { field: string; how: string }[] }[];
    expect(types).toHaveLength(1);
    expect(types[0]).toMatchObject({ name: 'struct rec', oldSize: 32, newSize: 40, capacity: 64 });
    expect(types[0].fields).toEqual([
      { field: 'id', how: 'copied' },
      { field: 'hits', how: 'new, zero' },
      { field: 'val', how: 'integer widened' },
      { field: 'tag', how: 'copied' },
      { field: 'next', how: 'copied' },
      { field: 'addr', how: 'copied' },
    ]);
    const fns = manifest.functions as { key: string; reasons: string[] }[];
    // unchanged text, but compiled against the old layout: in the patch because of the ripple
    expect(fns.find((f) => f.key === 'records.c::rec_weight')?.reasons).toEqual(["uses 'struct rec' concretely (its layout changed)"]);
    // the transformer is readable C in the bundle
    const units = fs.readdirSync(path.join(p12, 'units')).filter((f) => f.endsWith('.i'));
    const text = units.map((u) => fs.readFileSync(path.join(p12, 'units', u), 'utf8')).join('\n');
    expect(text).toMatch(/val: int -> long long, widened/);
  });

  it('transforms every instance under load: same checksum, new field zero, 64-bit values', async () => {
    const before = await converse(server.port, ['SUM', 'VERSION']);
    expect(before[0]).toMatch(/^-?\d+ 10020$/);
    expect(before[1]).toBe('datalist 1');
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
    expect(a).toMatchObject({ code: 0, json: { outcome: 'applied', reasons: [], pid: server.pid, instances: 10020 } });
    expect(a.json.transformUs).toEqual(expect.any(Number));

    // every instance kept its values; the new field starts at zero (GET counts hits in v2)
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
    expect(server.exited()).toBe(false);

    // the new layout runs: a value above 2^31 round-trips through the widened field
    // (after the load: it changes the checksum the load expects)
    expect(await converse(server.port, ['SETVAL 7 3000000000', 'GET 7'])).toEqual(['OK', '7 3000000000 r7 1']);
  }, 120_000);

  it('refuses a type that outgrows its room, names the sizes, and keeps serving', async () => {
    const sum = (await converse(server.port, ['SUM']))[0];
    const r = await apply(p23, server.pid);
    expect(r.code).toBe(1);
    expect(r.json.outcome).toBe('refused');
    expect((r.json.reasons as string[])[0]).toBe(
      "type 'struct rec' does not fit its reserved room: old size 40, new size 4136, capacity 64; give it more room (dsu build --slop 'struct rec=N' or DSU_ROOM(N)) and restart once",
    );
    expect(await converse(server.port, ['VERSION', 'SUM', 'PING'])).toEqual(['datalist 2', sum, 'PONG']);
  }, 60_000);

  it('cannot roll back a data transformation', async () => {
    const rb = await dsu(['rollback', '--pid', String(server.pid), '--run-dir', runDir]);
    expect(rb.code).toBe(1);
    expect(JSON.stringify(rb.json)).toMatch(/cannot be rolled back/);
    expect(await converse(server.port, ['VERSION'])).toEqual(['datalist 2']);
  }, 60_000);

  it('applies a second layout change in a row with a patch.yaml transformer (4-byte address -> 16 bytes)', async () => {
    const m = JSON.parse(fs.readFileSync(path.join(p24, 'manifest.json'), 'utf8')) as { types: { fields: { field: string; how: string }[] }[] };
    expect(m.types[0].fields.find((f) => f.field === 'addr')).toEqual({ field: 'addr', how: 'custom (patch.yaml)' });
    const [sum, hits] = await converse(server.port, ['SUM', 'HITS']);
    expect(await converse(server.port, ['ADDR 9'])).toEqual([String(0x0a000009)]);
    const load = startLoad({
      port: server.port,
      clients: 3,
      durationMs: 20_000,
      script: [
        { send: 'PING', expect: 'PONG' },
        { send: 'SUM', expect: sum },
        { send: 'VERSION', expect: ['datalist 2', 'datalist 4'] },
      ],
    });
    await new Promise((r) => setTimeout(r, 300));
    const a = await apply(p24, server.pid);
    expect(a).toMatchObject({ code: 0, json: { outcome: 'applied', instances: 10020 } });
    await new Promise((r) => setTimeout(r, 300));
    const result = await load.stop();
    expect({ failed: result.failed, wrong: result.wrong }).toEqual({ failed: 0, wrong: 0 });
    // values from v1 crossed two layout changes; the widened value and the hits survive too
    expect(await converse(server.port, ['VERSION', 'SUM', 'HITS', 'ADDR 9', 'ADDR 1000003', 'ADDR 2000001', 'GET 7'])).toEqual([
      'datalist 4',
      sum,
      hits,
      `${0x0a000009} +0`,
      `${0x0a000000 + 1000003} +0`,
      `${0x0a000000 + 2000001} +0`,
      '7 3000000000 r7 2',
    ]);
  }, 120_000);
});

// A data patch has no inverse to roll back with; the way back is a patch generated the other way
// (v2 -> v1): it narrows `val` again (checked) and drops the new field, and it is refused while a
// record holds a value the old layout cannot.
describe('datalist: back to the older layout with a patch generated the other way (v2 -> v1)', () => {
  let server: RunningServer;
  let p12 = '';
  let p21 = '';
  beforeAll(async () => {
    // the builds of the first block; patches of their own
    p12 = (await patch('v1', 'v2')).out;
    p21 = (await patch('v2', 'v1')).out;
    server = await startServer(path.join(dir('v1'), 'datalist'), { env: { DSU_RUN_DIR: runDir } });
  }, 240_000);
  afterAll(() => server?.stop());

  it('is refused while a value does not fit, then applied under load with every value kept', async () => {
    const [sum] = await converse(server.port, ['SUM']);
    expect(await apply(p12, server.pid)).toMatchObject({ code: 0, json: { outcome: 'applied' } });
    expect(await converse(server.port, ['SETVAL 7 3000000000', 'VERSION'])).toEqual(['OK', 'datalist 2']);
    const refused = await apply(p21, server.pid);
    expect(refused.code).toBe(1);
    expect(refused.json.outcome).toBe('refused');
    expect((refused.json.reasons as string[])[0]).toMatch(/struct rec\.val: value 3000000000 does not fit 'int'; nothing was changed/);
    expect(await converse(server.port, ['VERSION', 'GET 7'])).toEqual(['datalist 2', '7 3000000000 r7 1']); // GET counts hits in v2

    const [, seven] = await converse(server.port, ['SETVAL 7 -1', 'GET 7']);
    expect(seven).toBe('7 -1 r7 2');
    const [sumNow] = await converse(server.port, ['SUM']);
    const load = startLoad({
      port: server.port,
      clients: 3,
      durationMs: 20_000,
      script: [
        { send: 'PING', expect: 'PONG' },
        { send: 'SUM', expect: sumNow },
        { send: 'VERSION', expect: ['datalist 2', 'datalist 1'] },
      ],
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(await apply(p21, server.pid)).toMatchObject({ code: 0, json: { outcome: 'applied', instances: 10020 } });
    await new Promise((r) => setTimeout(r, 300));
    const result = await load.stop();
    expect({ failed: result.failed, wrong: result.wrong }).toEqual({ failed: 0, wrong: 0 });
    expect(await converse(server.port, ['VERSION', 'SUM', 'GET 7'])).toEqual(['datalist 1', sumNow, '7 -1 r7']);
    expect(sumNow).not.toBe(sum); // record 7 changed on the way
    expect(server.exited()).toBe(false);
  }, 120_000);
});
