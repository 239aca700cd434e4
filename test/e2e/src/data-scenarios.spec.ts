// Live data updates of globals, eager and lazy, under client load (issue 4, "Tests"): `dsu build` v1 of
// the statekeeper fixture (a global config struct, a global array of 64 structs, points embedded
// in 1000 heap shapes and in a global canvas, two counters, a helper whose signature changes),
// then two updates in a row on the same process and a third that is refused:
//   v1 -> v2  a global struct gains a field in the middle (patch.yaml default, used by new code);
//             the element struct of an array global changes (field in the middle, int -> long long);
//             a struct embedded in unchanged outer types gains a field (patch.yaml default);
//             a global is renamed with its value carried (patch.yaml globalRenames);
//             a helper's signature changes while its caller's text does not;
//   v2 -> v3  more data changes (widening, array resize, a field at the end, a renamed static; the
//             embedded struct's alignment grows, so its unchanged-text container moves it);
//   v3 -> v4  a global struct outgrows its reserved room: refused, the program keeps serving.
// Every instance's values are checked through the server's own checksums (SLOTSUM over all slots,
// PTSUM over all points, CONFIG over all config fields) before and after each update, and the
// load (0 failed, 0 wrong replies) runs across every apply. The whole sequence runs twice, on two
// processes: with eager patches, and with lazy ones (globals are transformed at the update point
// either way; the points embedded in the 1000 heap shapes wait for their first touch).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import {
  fixtureSourceDir,
  makeTempDir,
  removeDir,
  startServer,
  stopAllServers,
  type RunningServer,
} from './support/fixtures';
import { converse } from './support/line-client';
import { startLoad, type ScriptStep } from './support/load-client';

let work = '';
let runDir = '';
beforeAll(async () => {
  work = makeTempDir('dsu-e2e-datascen-');
  runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
  await build('v1');
  // Later versions keep v1's capacities, so their patches fit processes started from v1.
  for (const v of ['v2', 'v3', 'v4']) await build(v, ['--layout-from', dir('v1')]);
}, 240_000);
afterAll(async () => {
  await stopAllServers();
  if (work) removeDir(work);
});

const PROGRAM = 'statekeeper';
const dir = (v: string) => path.join(work, PROGRAM, v);
const specFile = (name: string) => path.join(fixtureSourceDir(PROGRAM, 'v1'), '..', name);

async function build(version: string, extra: string[] = []): Promise<void> {
  const r = await dsu([
    'build',
    fixtureSourceDir(PROGRAM, version),
    '--out',
    dir(version),
    '--label',
    version,
    '--update-point',
    'serve:loop',
    ...extra,
  ]);
  expect(r).toMatchObject({ code: 0, json: { program: PROGRAM, version } });
}

interface Manifest {
  functions: { key: string; change: string; reasons: string[] }[];
  types: {
    name: string;
    mode: Mode;
    oldSize: number;
    newSize: number;
    capacity: number;
    fields: { field: string; how: string }[];
    instances: {
      globals: { what: string; symbol: string; offset: number; count: number }[];
      embeddedIn: { container: string; offset: number; count: number }[];
    };
  }[];
  globals: { key: string; change: string; from?: string }[];
  notes?: string[];
}

type Mode = 'eager' | 'lazy';

// Bundles applied without `dsu check` (and so with --allow-unsigned): ones the safety analysis
// rejects, applied so that the runtime's own refusal is what the test sees.
const unchecked = new Set<string>();

async function patch(
  mode: Mode,
  from: string,
  to: string,
  extra: string[] = [],
  opts: { check: boolean } = { check: true },
): Promise<{ out: string; manifest: Manifest }> {
  const out = path.join(work, PROGRAM, `${from}-${to}-${mode}`);
  const r = await dsu(['patch', dir(from), dir(to), '--out', out, '--transform', mode, ...extra]);
  expect(r.code).toBe(0);
  // dsu apply takes only checked, signed bundles: dsu check signs with the local key
  if (opts.check) expect(await dsu(['check', out])).toMatchObject({ code: 0, json: { verdict: 'approved' } });
  else unchecked.add(out);
  return { out, manifest: JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Manifest };
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

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The text of a C function of a fixture version's source file, from its header to its closing brace. */
function functionText(version: string, file: string, header: string): string {
  const src = fs.readFileSync(path.join(fixtureSourceDir(PROGRAM, version), file), 'utf8');
  const start = src.indexOf(header);
  if (start < 0) throw new Error(`${version}/${file} has no '${header}'`);
  return src.slice(start, src.indexOf('\n}\n', start) + 3);
}

/** Runs `apply` while clients check every reply against `script`; asserts no failed or wrong reply. */
async function applyUnderLoad(port: number, script: ScriptStep[], bundle: string, pid: number) {
  const load = startLoad({
    port,
    clients: 3,
    reconnectingClients: 1,
    requestsPerConnection: 5,
    durationMs: 30_000,
    script,
  });
  await delay(500);
  const a = await apply(bundle, pid);
  await delay(300);
  const result = await load.stop();
  expect({
    failed: result.failed,
    wrong: result.wrong,
    samples: [...result.wrongSamples, ...result.failureSamples],
  }).toEqual({ failed: 0, wrong: 0, samples: [] });
  expect(result.ok).toBeGreaterThan(100);
  return a;
}

// Instances transformed at the update point: 1 config + 64 slots + 2 points in each of the 8 global
// canvas shapes, and (eager only) 2 points in each of the 1000 heap shapes.
const atCommit = (mode: Mode) => 1 + 64 + 16 + (mode === 'eager' ? 2000 : 0);

describe.each(['eager', 'lazy'] as const)('statekeeper: globals, arrays of structs, embedded structs, renames and signature changes, %s, two updates in a row', (mode) => {
  let server: RunningServer;
  let p12: { out: string; manifest: Manifest };
  let p23: { out: string; manifest: Manifest };
  let p34: { out: string; manifest: Manifest };
  // values read from v1 before the first update
  let slotsum = '';
  let ptsum = '';
  let ticks = 0;
  let marks = 0;
  beforeAll(async () => {
    p12 = await patch(mode, 'v1', 'v2', ['--spec', specFile('v1-v2.patch.yaml')]);
    p23 = await patch(mode, 'v2', 'v3', ['--spec', specFile('v2-v3.patch.yaml')]);
    // outgrows its room: dsu check rejects it (capacity); the runtime must refuse it as well
    p34 = await patch(mode, 'v3', 'v4', [], { check: false });
    server = await startServer(path.join(dir('v1'), PROGRAM), { env: { DSU_RUN_DIR: runDir } });
  }, 240_000);
  afterAll(() => server?.stop());

  it('v1 -> v2: the patch transforms the config, every slot and every embedded point, renames the counter and carries the signature change', () => {
    const byName = Object.fromEntries(p12.manifest.types.map((t) => [t.name, t]));
    // only the changed types: the outer types of the embedded points (shape, canvas) keep their layout
    expect(Object.keys(byName).sort()).toEqual(['struct config', 'struct point', 'struct slot']);
    expect(p12.manifest.types.map((t) => t.mode)).toEqual([mode, mode, mode]);
    expect(byName['struct config']).toMatchObject({ oldSize: 32, newSize: 40, capacity: 64 });
    expect(byName['struct config'].fields).toEqual([
      { field: 'port_base', how: 'copied' },
      { field: 'max_conn', how: 'copied' },
      { field: 'weight', how: 'default 7' },
      { field: 'name', how: 'copied' },
      { field: 'requests', how: 'copied' },
    ]);
    expect(byName['struct config'].instances.globals).toEqual([
      { what: 'global config', symbol: 'config', offset: 0, count: 1 },
    ]);
    expect(byName['struct slot'].fields).toEqual([
      { field: 'id', how: 'copied' },
      { field: 'state', how: 'new, zero' },
      { field: 'value', how: 'integer widened' },
      { field: 'tag', how: 'copied' },
      { field: 'touched', how: 'copied' },
    ]);
    expect(byName['struct slot'].instances.globals).toEqual([
      { what: 'global slots', symbol: 'slots', offset: 0, count: 64 },
    ]);
    expect(byName['struct point'].fields).toEqual([
      { field: 'x', how: 'copied' },
      { field: 'y', how: 'copied' },
      { field: 'z', how: 'default 1' },
    ]);
    // points are found inside the heap shapes (two per shape) and inside the global canvas (8 shapes x 2)
    const inShapes = byName['struct point'].instances.embeddedIn.filter(
      (e) => e.container === 'struct shape',
    );
    expect(inShapes.map((e) => e.offset)).toEqual([8, 48]); // struct point's room is 8-aligned
    expect(byName['struct point'].instances.globals.filter((g) => g.symbol === 'canvas')).toHaveLength(16);
    expect(p12.manifest.globals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'tick_count', change: 'renamed', from: 'ticks' }),
        expect.objectContaining({ key: 'config', change: 'type' }),
        expect.objectContaining({ key: 'slots', change: 'type' }),
      ]),
    );
    // the caller's text is the same in both versions; it is in the patch only because of the signature
    expect(functionText('v2', 'state.c', 'static void cmd_scale(')).toBe(
      functionText('v1', 'state.c', 'static void cmd_scale('),
    );
    const fns = Object.fromEntries(p12.manifest.functions.map((f) => [f.key, f]));
    expect(fns['scaled']).toMatchObject({
      change: 'signature',
      reasons: ['signature changed (int (int) -> long long (long long))'],
    });
    expect(fns['state.c::cmd_scale']).toMatchObject({
      change: 'body',
      reasons: ["calls 'scaled', whose signature changed"],
    });
    // ripple: unchanged text compiled against the old layout of struct point
    expect(fns['shapes.c::point_weight'].reasons).toEqual([
      "uses 'struct point' concretely (its layout changed)",
    ]);
  });

  it('v1 -> v2 under load: every value survives, new fields hold their defaults, the renamed counter keeps counting, the new code runs', async () => {
    // running values that differ from the initializers, so they cannot come from the new version's
    expect(
      await converse(server.port, [
        'SETCFG 9100 250 beta',
        'SETSLOT 9 12345',
        'TICK',
        'TICK',
        'TICK',
        'MARK',
        'MARK',
      ]),
    ).toEqual(['OK', 'OK', '1', '2', '3', '1', '2']);
    const before = await converse(server.port, [
      'VERSION',
      'CONFIG',
      'SLOTSUM',
      'PTSUM',
      'SLOT 9',
      'PT 5',
      'PT 100003',
      'SCALE 3000000',
      'REQS',
    ]);
    expect(before.slice(0, 2)).toEqual(['statekeeper 1', 'port_base=9100 max_conn=250 name=beta']);
    expect(before[2]).toMatch(/^-?\d+ 64$/);
    expect(before[3]).toMatch(/^-?\d+ 2016$/);
    expect(before.slice(4)).toEqual([
      '9 12345 s9',
      '5 5,-15 6,7',
      '100003 3,-1641 94,58',
      '2147483647',
      expect.stringMatching(/^\d+$/),
    ]);
    [slotsum, ptsum] = [before[2], before[3]];
    ticks = 3;
    marks = 2;
    const requests = Number(before[8]);

    const a = await applyUnderLoad(
      server.port,
      [
        { send: 'PING', expect: 'PONG' },
        { send: 'SLOTSUM', expect: slotsum },
        { send: 'PTSUM', expect: ptsum },
        {
          send: 'CONFIG',
          expect: ['port_base=9100 max_conn=250 name=beta', 'port_base=9100 max_conn=250 name=beta weight=7'],
        },
        { send: 'SCALE 12', expect: '12000' },
        { send: 'VERSION', expect: ['statekeeper 1', 'statekeeper 2'] },
      ],
      p12.out,
      server.pid,
    );
    expect(a).toMatchObject({
      code: 0,
      json: { outcome: 'applied', reasons: [], pid: server.pid, instances: atCommit(mode) },
    });

    const after = await converse(server.port, [
      'VERSION',
      'CONFIG',
      'SLOTSUM',
      'PTSUM',
      'SLOT 9',
      'SCORE 9',
      'PT 5',
      'PT 100003',
      'TICK',
      'MARK',
      'SCALE 3000000',
      'REQS',
    ]);
    expect(after.slice(0, 11)).toEqual([
      'statekeeper 2',
      'port_base=9100 max_conn=250 name=beta weight=7', // old fields kept, the new one holds its default
      slotsum,
      ptsum,
      '9 12345 s9 0', // slot element transformed: new field zero
      String(12345 * 7), // the new code uses the new field
      '5 5,-15,1 6,7,1', // embedded points in a heap shape: values kept, z = 1
      '100003 3,-1641,1 94,58,1', // ... and in the global canvas
      String(ticks + 1), // renamed global: counts on from its running value
      String(marks + 1),
      '3000000000', // the new signature (64-bit, no clamping) is what runs
    ]);
    expect(Number(after[11])).toBeGreaterThan(requests); // config.requests carried, still counting
    ticks++;
    marks++;
    expect(server.exited()).toBe(false);

    // the widened slot value holds more than 32 bits (after the load: it changes SLOTSUM)
    expect(await converse(server.port, ['SETSLOT 9 3000000000', 'SLOT 9'])).toEqual([
      'OK',
      '9 3000000000 s9 0',
    ]);
  }, 120_000);

  it('v2 -> v3, a second update in a row: the embedded points widen in place inside their unchanged container', () => {
    const byName = Object.fromEntries(p23.manifest.types.map((t) => [t.name, t]));
    // struct shape is not in the patch: the room dsu-cc reserved gives struct point 8-byte
    // alignment from v1 on, so widening its fields to long long moves nothing inside shape
    expect(Object.keys(byName).sort()).toEqual(['struct config', 'struct point', 'struct slot']);
    expect(byName['struct config'].fields).toEqual([
      { field: 'port_base', how: 'copied' },
      { field: 'max_conn', how: 'integer widened' },
      { field: 'weight', how: 'copied' },
      { field: 'name', how: 'copied' },
      { field: 'requests', how: 'copied' },
      { field: 'flags', how: 'default 3' },
    ]);
    expect(byName['struct slot'].fields.find((f) => f.field === 'tag')).toEqual({
      field: 'tag',
      how: 'array resized 4 -> 12',
    });
    // every point is found where it is embedded: two per heap shape, two per canvas shape
    const inShapes = byName['struct point'].instances.embeddedIn.filter(
      (e) => e.container === 'struct shape',
    );
    expect(inShapes.map((e) => e.offset)).toEqual([8, 48]);
    expect(p23.manifest.globals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ key: 'state.c::stamps', change: 'renamed', from: 'state.c::marks' }),
      ]),
    );
  });

  it('v2 -> v3 under load: every value crosses its second transformation, the new layout runs', async () => {
    const before = await converse(server.port, ['SLOTSUM', 'PTSUM', 'CONFIG', 'REQS']);
    expect(before[0]).not.toBe(slotsum); // SETSLOT 9 changed it
    [slotsum] = before;
    expect(before[1]).toBe(ptsum);
    expect(before[2]).toBe('port_base=9100 max_conn=250 name=beta weight=7');
    const a = await applyUnderLoad(
      server.port,
      [
        { send: 'PING', expect: 'PONG' },
        { send: 'SLOTSUM', expect: slotsum },
        { send: 'PTSUM', expect: ptsum },
        {
          send: 'CONFIG',
          expect: [
            'port_base=9100 max_conn=250 name=beta weight=7',
            'port_base=9100 max_conn=250 name=beta weight=7 flags=3',
          ],
        },
        { send: 'SCORE 9', expect: String(3000000000 * 7) },
        { send: 'VERSION', expect: ['statekeeper 2', 'statekeeper 3'] },
      ],
      p23.out,
      server.pid,
    );
    expect(a).toMatchObject({
      code: 0,
      json: { outcome: 'applied', reasons: [], instances: atCommit(mode) },
    });
    expect(
      await converse(server.port, [
        'VERSION',
        'CONFIG',
        'SLOTSUM',
        'PTSUM',
        'SLOT 9',
        'PT 5',
        'PT 100003',
        'TICK',
        'MARK',
        'SCALE 3000000',
      ]),
    ).toEqual([
      'statekeeper 3',
      'port_base=9100 max_conn=250 name=beta weight=7 flags=3',
      slotsum,
      ptsum,
      '9 3000000000 s9 0',
      '5 5,-15,1 6,7,1',
      '100003 3,-1641,1 94,58,1',
      String(ticks + 1), // renamed in v2 (the variable lives in the first patch), counted on by v3's code
      String(marks + 1), // the static renamed by this patch
      '3000000000',
    ]);
    ticks++;
    marks++;
    // values above 2^31 round-trip through the widened point and config fields
    expect(
      await converse(server.port, [
        'SETPT 100003 3000000000',
        'PT 100003',
        'SETCFG 9100 5000000000 beta',
        'CONFIG',
      ]),
    ).toEqual([
      'OK',
      '100003 3000000000,-1641,1 94,58,1',
      'OK',
      'port_base=9100 max_conn=5000000000 name=beta weight=7 flags=3',
    ]);
    expect(server.exited()).toBe(false);
  }, 120_000);

  it('v3 -> v4: a global struct that outgrows its room is refused with the sizes, and the program keeps serving', async () => {
    expect(p34.manifest.types.map((t) => [t.name, t.oldSize, t.newSize, t.capacity])).toEqual([
      ['struct config', 56, 4152, 64],
    ]);
    const [slots, points, config] = await converse(server.port, ['SLOTSUM', 'PTSUM', 'CONFIG']);
    const a = await applyUnderLoad(
      server.port,
      [
        { send: 'PING', expect: 'PONG' },
        { send: 'SLOTSUM', expect: slots },
        { send: 'PTSUM', expect: points },
        { send: 'CONFIG', expect: config },
        { send: 'VERSION', expect: 'statekeeper 3' },
      ],
      p34.out,
      server.pid,
    );
    expect(a.code).toBe(1);
    expect(a.json.outcome).toBe('refused');
    expect(a.json.reasons).toEqual([
      "type 'struct config' does not fit its reserved room: old size 56, new size 4152, capacity 64; give it more room (dsu build --slop 'struct config=N' or DSU_ROOM(N)) and restart once",
    ]);
    expect(
      await converse(server.port, ['VERSION', 'CONFIG', 'SLOTSUM', 'PTSUM', 'TICK', 'MARK', 'PING']),
    ).toEqual(['statekeeper 3', config, slots, points, String(ticks + 1), String(marks + 1), 'PONG']);
    expect(server.exited()).toBe(false);
  }, 120_000);
});
