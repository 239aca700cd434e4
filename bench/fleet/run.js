// Fleet speed on one host (issue 15): N processes updated v1 -> v2, dsu and libpulp side by side
// in the same run, for each N (default 10, 100, 1000):
//  - dsu rollout: N pollserver v1 processes under `dsu up` (embedded: in-process bus, SQLite),
//    `dsu rollout pollserver --to v2`; timed from the gateway's record of the request to the
//    rollout's completion (every result in), and the CLI's wall time (node start-up included);
//  - dsu apply --all: N fresh v1 processes, `dsu apply <bundle> --all --program pollserver`, wall;
//  - libpulp 0.3.16 (built from ../shared/anchors into a cache outside the repository by
//    libpulp/build.sh): N patchable processes run with LD_PRELOAD=libpulp.so, one
//    `ulp trigger -p fleetsrv libfleet_v2.so` (as its tests/manyprocesses.py does), wall.
// Writes bench/results/fleet.json and prints a Markdown table. Options: --n 10,100,1000
// --runs R (medians over R rounds) --keep. Every process it starts is stopped by pid.
'use strict';
const cp = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { createWorkspace, isAlive, log, median, machineInfo, opt, flag, round } = require('../lib/harness');

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'apps/cli/bin/dsu.js');
const fixture = path.join(root, 'test/fixtures/pollserver');
const cacheDir = process.env.DSU_BENCH_CACHE || path.join(os.homedir(), '.cache', 'dsu-bench');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const Ns = opt('--n', '10,100,1000').split(',').map(Number);
const runs = Number(opt('--runs', '1'));
const ws = createWorkspace({ prefix: 'dsu-bench-fleet-', keep: flag('--keep') });
const env = {
  ...process.env,
  DSU_HOME: path.join(ws.work, 'home'),
  DSU_RUN_DIR: ws.runDir,
  DSU_HOST_ID: 'bench',
  KAFKA_BROKERS: '',
  DATABASE_URL: '',
};

/** Runs the dsu CLI with --json; resolves {json, ms} (wall time of the whole command). */
function dsu(args, o = {}) {
  const t0 = process.hrtime.bigint();
  return new Promise((res, rej) =>
    cp.execFile(process.execPath, [cli, ...args, '--json'], { env: o.env ?? env, maxBuffer: 256 << 20 }, (err, stdout, stderr) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      let json;
      try {
        json = JSON.parse(stdout.trim().split('\n').pop());
      } catch {
        return rej(new Error(`dsu ${args.join(' ')}: ${stderr || stdout}`));
      }
      if (err && !o.allowFail) rej(new Error(`dsu ${args[0]} failed: ${JSON.stringify(json).slice(0, 2000)}`));
      else res({ json, ms });
    }),
  );
}

async function startUp() {
  const child = cp.spawn(process.execPath, [cli, 'up', '--port', '0', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  ws.started.add(child.pid);
  let logText = '';
  child.stderr.on('data', (d) => (logText += d.toString()).length > 1e6 && (logText = logText.slice(-1e5)));
  // --up-log FILE: dsu up's structured logs (where a rollout's time goes)
  if (opt('--up-log')) child.stderr.pipe(fs.createWriteStream(opt('--up-log')));
  const url = await new Promise((res, rej) => {
    readline.createInterface({ input: child.stdout }).on('line', (l) => l.startsWith('{') && res(JSON.parse(l).url));
    child.once('exit', (c) => rej(new Error(`dsu up exited ${c}: ${logText.slice(-3000)}`)));
  });
  const token = fs.readFileSync(path.join(env.DSU_HOME, 'token'), 'utf8').trim();
  const get = async (p) => {
    const res = await fetch(`${url}${p}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET ${p}: HTTP ${res.status} ${await res.text()}`);
    return p.startsWith('/artifacts/') ? Buffer.from(await res.arrayBuffer()) : res.json();
  };
  return { child, url, get, log: () => logText };
}

/**
 * Starts `n` processes of `bin` (args, env), their output appended to one file, and waits until
 * each printed its ready line (`ready` matches one). Returns the pids.
 */
async function startMany(n, bin, args, procEnv, ready, name) {
  const out = path.join(ws.work, `${name}-${Date.now()}.out`);
  const fd = fs.openSync(out, 'a');
  const pids = [];
  try {
    for (let i = 0; i < n; i++) {
      const child = cp.spawn(bin, args, { env: procEnv, stdio: ['ignore', fd, fd], cwd: ws.work });
      ws.started.add(child.pid);
      child.on('error', () => undefined);
      pids.push(child.pid);
    }
  } finally {
    fs.closeSync(fd);
  }
  const t0 = Date.now();
  for (;;) {
    const text = fs.readFileSync(out, 'utf8');
    const count = (text.match(ready) || []).length;
    if (count >= n) return { pids, out };
    if (Date.now() - t0 > 60_000 + n * 100) throw new Error(`only ${count} of ${n} ${name} processes started: ${text.slice(-500)}`);
    await sleep(20);
  }
}

/** SIGTERM to all, up to 15 s for them to go (node reaps them meanwhile), then SIGKILL. */
async function stopAll(pids) {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const t0 = Date.now();
  while (pids.some(isAlive) && Date.now() - t0 < 15_000) await sleep(20);
  for (const p of pids.filter(isAlive)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await sleep(50);
  for (const p of pids) ws.started.delete(p);
}

/** Waits until the gateway's inventory of host 'bench' is exactly `pids`, all on `version`. */
async function waitInventory(up, pids, version) {
  const want = new Set(pids);
  for (let i = 0; i < 1200; i++) {
    const hosts = await up.get('/inventory');
    const procs = hosts.flatMap((h) => h.processes);
    if (procs.length === want.size && procs.every((p) => want.has(p.pid) && p.version === version)) return;
    await sleep(100);
  }
  throw new Error(`the inventory never showed exactly the ${pids.length} processes on ${version}`);
}

/** dsu side, one N: a rollout under dsu up, then dsu apply --all on fresh processes. */
async function dsuRound(up, n, bundleDir) {
  const pollEnv = { ...env };
  const bin = path.join(ws.work, 'v1', 'pollserver');
  let s = await startMany(n, bin, ['0'], pollEnv, /listening \d+/g, 'pollserver');
  await waitInventory(up, s.pids, 'v1');
  const r = await dsu(['rollout', 'pollserver', '--to', 'v2'], { allowFail: true });
  const view = await up.get(`/rollouts/${r.json.rolloutId}`);
  const serverMs = Date.parse(view.completedAt) - Date.parse(view.requestedAt);
  const rolloutFailures = n - view.results.filter((x) => x.outcome === 'applied').length;
  await stopAll(s.pids);

  s = await startMany(n, bin, ['0'], pollEnv, /listening \d+/g, 'pollserver');
  await sleep(200); // let the applier's heartbeat that sees them pass (it contacts every process)
  const a = await dsu(['apply', bundleDir, '--all', '--program', 'pollserver'], { allowFail: true });
  const applyFailures = n - (a.json.applied ?? 0);
  await stopAll(s.pids);
  // the inventory forgets the stopped processes before the next round
  await waitInventory(up, [], 'v1');
  return {
    rolloutMs: serverMs,
    rolloutCliMs: round(r.ms, 1),
    rolloutStatus: view.status,
    rolloutFailures,
    applyAllCliMs: round(a.ms, 1),
    applyAllMs: a.json.elapsedMs ?? null, // inside the command: without node's start-up
    applyFailures,
  };
}

/** libpulp side, one N: N patchable processes, one `ulp trigger` for all of them. */
async function pulpRound(pulp, n) {
  const pulpEnv = { ...process.env, LD_PRELOAD: path.join(pulp.dir, 'lib/.libs/libpulp.so.0') };
  const s = await startMany(n, path.join(pulp.out, 'fleetsrv'), [], pulpEnv, /ready \d+/g, 'fleetsrv');
  const t0 = process.hrtime.bigint();
  const t = cp.spawnSync(path.join(pulp.dir, 'tools/ulp'), ['trigger', '-p', 'fleetsrv', path.join(pulp.out, 'libfleet_v2.so')], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const m = /Processes patched: (\d+), Skipped: (\d+), Failed: (\d+)/.exec(t.stdout || '');
  // a sample answers with the v2 reply
  const sample = s.pids.slice(0, 3);
  for (const p of sample) process.kill(p, 'SIGUSR1');
  await sleep(300);
  const text = fs.readFileSync(s.out, 'utf8');
  const v2 = sample.filter((p) => new RegExp(`^${p} fleet 2$`, 'm').test(text)).length;
  await stopAll(s.pids);
  if (!m) throw new Error(`ulp trigger (exit ${t.status}): ${(t.stdout || '').slice(-1000)} ${(t.stderr || '').slice(-1000)}`);
  return {
    triggerMs: round(ms, 1),
    patched: Number(m[1]),
    failures: n - Number(m[1]) + (sample.length - v2),
    exit: t.status,
  };
}

function buildPulp() {
  const out = path.join(ws.work, 'pulp');
  const r = cp.spawnSync(path.join(__dirname, 'libpulp/build.sh'), [cacheDir, out], { encoding: 'utf8', timeout: 15 * 60_000 });
  if (r.status !== 0) return { skipped: (r.stderr || '').trim().split('\n').pop() || `build.sh exited ${r.status}` };
  return { dir: r.stdout.trim().split('\n').pop(), out };
}

async function main() {
  const results = { when: new Date().toISOString(), machine: machineInfo({ repo: root, clang: 'clang-19', pinned: false }), options: { n: Ns, runs } };
  log(`libpulp: building into ${cacheDir} (once)`);
  const pulp = buildPulp();
  if (pulp.skipped) log(`libpulp: SKIPPED (${pulp.skipped}); the bench reports dsu's own numbers only`);
  results.libpulp = pulp.skipped ? { skipped: pulp.skipped } : { version: '0.3.16', dir: pulp.dir };

  log('dsu up; submitting pollserver v1 and v2 (compile, patch, check)');
  const up = await startUp();
  const src = (v) => path.join(fixture, v);
  await dsu(['submit', src('v1'), '--program', 'pollserver', '--version', 'v1', '--update-point', 'serve:loop'], { env: { ...env, DSU_GATEWAY: up.url } });
  await dsu(['install', 'pollserver', 'v1', '--out', path.join(ws.work, 'v1')], { env: { ...env, DSU_GATEWAY: up.url } });
  const sub = await dsu(['submit', src('v2'), '--program', 'pollserver', '--version', 'v2', '--update-point', 'serve:loop'], { env: { ...env, DSU_GATEWAY: up.url } });
  if (sub.json.patch?.verdict !== 'approved') throw new Error(`v2: ${JSON.stringify(sub.json)}`);
  // the same bundle for dsu apply: the pipeline's, checked and signed locally (same DSU_HOME keys)
  const patch = (await up.get('/patches?program=pollserver')).find((p) => p.patchId === sub.json.patch.id);
  const bundleDir = path.join(ws.work, 'bundle');
  fs.mkdirSync(bundleDir);
  fs.writeFileSync(path.join(ws.work, 'bundle.tar'), await up.get(`/artifacts/${patch.bundleSha256}`));
  cp.execFileSync('tar', ['xf', path.join(ws.work, 'bundle.tar'), '-C', bundleDir]);
  await dsu(['check', bundleDir]);
  env.DSU_GATEWAY = up.url;
  // warm-up, not timed: the applier downloads, verifies and unpacks the bundle once per host
  log('warm-up rollout to 1 process');
  const w = await startMany(1, path.join(ws.work, 'v1', 'pollserver'), ['0'], env, /listening \d+/g, 'pollserver');
  await waitInventory(up, w.pids, 'v1');
  await dsu(['rollout', 'pollserver', '--to', 'v2']);
  await stopAll(w.pids);
  await waitInventory(up, [], 'v1');

  results.perN = {};
  try {
    for (const n of Ns) {
      const rounds = [];
      for (let r = 0; r < runs; r++) {
        // alternate which side goes first
        const order = r % 2 === 0 ? ['dsu', 'libpulp'] : ['libpulp', 'dsu'];
        const one = {};
        for (const side of order) {
          if (side === 'dsu') Object.assign(one, await dsuRound(up, n, bundleDir));
          else if (!pulp.skipped) one.libpulp = await pulpRound(pulp, n);
        }
        log(`N=${n} round ${r + 1}: ${JSON.stringify(one)}`);
        rounds.push(one);
      }
      const med = (f) => round(median(rounds.map(f)), 1);
      const x = {
        rolloutMs: med((o) => o.rolloutMs),
        rolloutCliMs: med((o) => o.rolloutCliMs),
        applyAllCliMs: med((o) => o.applyAllCliMs),
        applyAllMs: med((o) => o.applyAllMs),
        dsuFailures: rounds.reduce((a, o) => a + o.rolloutFailures + o.applyFailures, 0),
        libpulpMs: pulp.skipped ? null : med((o) => o.libpulp.triggerMs),
        libpulpFailures: pulp.skipped ? null : rounds.reduce((a, o) => a + o.libpulp.failures, 0),
        rounds,
      };
      if (x.libpulpMs) {
        x.ratioRollout = round(x.rolloutMs / x.libpulpMs, 2);
        x.ratioApplyAll = round(x.applyAllMs / x.libpulpMs, 2);
        x.ratioApplyAllCli = round(x.applyAllCliMs / x.libpulpMs, 2);
        x.ratioRolloutCli = round(x.rolloutCliMs / x.libpulpMs, 2);
      }
      results.perN[n] = x;
    }
  } finally {
    up.child.kill('SIGTERM');
    await new Promise((r) => (up.child.exitCode !== null ? r() : up.child.once('exit', r)));
    ws.started.delete(up.child.pid);
  }
  results.finished = new Date().toISOString();
  const file = path.join(root, 'bench/results/fleet.json');
  // a run of some N keeps the other N of the previous results, each with when it was measured
  for (const n of Ns) results.perN[n].measuredAt = results.finished;
  try {
    const prev = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const [n, x] of Object.entries(prev.perN ?? {})) if (!(n in results.perN)) results.perN[n] = { measuredAt: prev.finished, ...x };
  } catch {
    // no previous results
  }
  fs.writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  console.log('| N | dsu rollout (request → all results in) | `dsu rollout` CLI wall | `dsu apply --all` (inside / CLI wall) | libpulp `ulp trigger` | dsu / libpulp (rollout, apply --all inside) | failures dsu / libpulp |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const n of Object.keys(results.perN).map(Number).sort((a, b) => a - b)) {
    const x = results.perN[n];
    console.log(
      `| ${n} | ${x.rolloutMs} ms | ${x.rolloutCliMs} ms | ${x.applyAllMs ?? '-'} / ${x.applyAllCliMs} ms | ${x.libpulpMs ?? 'skipped'} ms | ${x.ratioRollout ?? '-'}, ${x.ratioApplyAll ?? '-'} | ${x.dsuFailures} / ${x.libpulpFailures ?? '-'} |`,
    );
  }
}

main().catch((err) => {
  console.error(`bench/fleet: ${err instanceof Error ? err.stack : err}`);
  process.exit(1);
});
