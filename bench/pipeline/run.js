// Pipeline benchmarks:
//  - latency from `dsu submit` of a new version to every process updated (submit + rollout),
//    p50/p95 over repeated runs, on the embedded default (in-process bus, SQLite) and over Kafka +
//    PostgreSQL (`dsu up` with KAFKA_BROKERS / DATABASE_URL; the local launchers in tools/);
//  - rollout of one patch to N (default 100) processes on one host: time from the rollout request
//    to all applied.
// Each run submits a fresh version (the v2 source with a different VERSION reply), so every run
// compiles, generates, checks and applies a real patch.
'use strict';
const { execFile, execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const root = path.resolve(__dirname, '../..');
const cli = path.join(root, 'apps/cli/bin/dsu.js');
const fixture = path.join(root, 'test/fixtures/pollserver');

function args() {
  const a = process.argv.slice(2);
  const o = {
    only: ['embedded', 'kafka', 'fanout'],
    runs: 7,
    processes: 100,
    latencyProcesses: 4,
    keep: false,
  };
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--only') o.only = a[++i].split(',');
    else if (a[i] === '--runs') o.runs = Number(a[++i]);
    else if (a[i] === '--processes') o.processes = Number(a[++i]);
    else if (a[i] === '--keep') o.keep = true;
    else throw new Error(`unknown option ${a[i]}; see bench/pipeline/run`);
  }
  return o;
}

const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

function dsu(env, ...a) {
  return new Promise((res, rej) =>
    execFile(process.execPath, [cli, ...a, '--json'], { env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      try {
        const json = JSON.parse(stdout.trim().split('\n').pop());
        if (err) rej(new Error(`dsu ${a[0]} failed: ${JSON.stringify(json).slice(0, 2000)}`));
        else res(json);
      } catch {
        rej(new Error(`dsu ${a.join(' ')}: ${stderr || stdout}`));
      }
    }),
  );
}

async function startUp(env) {
  const child = spawn(process.execPath, [cli, 'up', '--port', '0', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d) => (log += d.toString()).length > 1e6 && (log = log.slice(-1e5)));
  const url = await new Promise((res, rej) => {
    readline
      .createInterface({ input: child.stdout })
      .on('line', (l) => l.startsWith('{') && res(JSON.parse(l).url));
    child.once('exit', (c) => rej(new Error(`dsu up exited ${c}: ${log.slice(-3000)}`)));
  });
  // The admin token `dsu up` wrote for this user before listening (the dsu commands find it themselves).
  const token = fs.readFileSync(path.join(env.DSU_HOME, 'token'), 'utf8').trim();
  return { child, url, token, log: () => log };
}

function startServer(binary, env) {
  return new Promise((res, rej) => {
    const child = spawn(binary, ['0'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.once('data', (d) =>
      res({ child, pid: child.pid, port: Number(/listening (\d+)/.exec(d.toString())?.[1]) }),
    );
    child.once('exit', () => rej(new Error('pollserver exited before listening')));
  });
}

async function waitInventory(up, pids, version) {
  for (let i = 0; i < 1200; i++) {
    const res = await fetch(`${up.url}/inventory`, { headers: { authorization: `Bearer ${up.token}` } });
    if (!res.ok) throw new Error(`GET /inventory: HTTP ${res.status} ${await res.text()}`);
    const hosts = await res.json();
    const have = new Map(hosts.flatMap((h) => h.processes).map((p) => [p.pid, p.version]));
    if (pids.every((p) => have.get(p) === version)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the inventory never showed all ${pids.length} processes on ${version}`);
}

function versionSource(work, n) {
  const dir = path.join(work, 'src', `r${n}`);
  fs.cpSync(path.join(fixture, 'v2'), dir, { recursive: true });
  const f = path.join(dir, 'commands.c');
  fs.writeFileSync(
    f,
    fs.readFileSync(f, 'utf8').replace('"pollserver %d", 2', `"pollserver %d", ${100 + n}`),
  );
  return dir;
}

/** One environment: dsu up, v1 submitted and running in `count` processes; `step(n)` moves all to a fresh version. */
async function setup(name, extraEnv, count) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `dsu-bench-pipeline-${name}-`));
  const runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
  const env = {
    ...process.env,
    DSU_HOME: path.join(work, 'home'),
    DSU_RUN_DIR: runDir,
    DSU_HOST_ID: 'bench',
    DSU_HEARTBEAT_MS: '300',
    ...extraEnv,
  };
  const up = await startUp(env);
  const cenv = { ...env, DSU_GATEWAY: up.url };
  await dsu(
    cenv,
    'submit',
    path.join(fixture, 'v1'),
    '--program',
    'pollserver',
    '--version',
    'v1',
    '--update-point',
    'serve:loop',
  );
  await dsu(cenv, 'install', 'pollserver', 'v1', '--out', path.join(work, 'v1'));
  const servers = [];
  for (let i = 0; i < count; i++) servers.push(await startServer(path.join(work, 'v1', 'pollserver'), env));
  await waitInventory(
    up,
    servers.map((s) => s.pid),
    'v1',
  );
  let current = 'v1';
  return {
    work,
    servers,
    async submit(n) {
      const s = await dsu(
        cenv,
        'submit',
        versionSource(work, n),
        '--program',
        'pollserver',
        '--version',
        `r${n}`,
        '--update-point',
        'serve:loop',
      );
      if (s.patch?.verdict !== 'approved') throw new Error(`r${n}: ${JSON.stringify(s)}`);
      return s;
    },
    async rollout(n) {
      await waitInventory(
        up,
        servers.map((s) => s.pid),
        current,
      );
      const t = Date.now();
      const r = await dsu(cenv, 'rollout', 'pollserver', '--to', `r${n}`);
      const ms = Date.now() - t;
      const bad = r.results.filter((x) => x.outcome !== 'applied');
      if (r.results.length !== servers.length || bad.length)
        throw new Error(
          `rollout r${n}: ${r.results.length} results, not applied: ${JSON.stringify(bad).slice(0, 500)}`,
        );
      current = `r${n}`;
      return { ms, pauses: r.results.map((x) => x.pauseUs) };
    },
    async close(keep) {
      for (const s of servers) s.child.kill('SIGTERM');
      up.child.kill('SIGTERM');
      await new Promise((r) => up.child.once('exit', r));
      if (!keep) fs.rmSync(work, { recursive: true, force: true });
    },
  };
}

async function latency(name, extraEnv, o) {
  const env = await setup(name, extraEnv, o.latencyProcesses);
  const samples = [];
  try {
    for (let n = 1; n <= o.runs; n++) {
      const t = Date.now();
      const s = await env.submit(n);
      const submitMs = Date.now() - t;
      const r = await env.rollout(n);
      samples.push({ totalMs: Date.now() - t, submitMs, rolloutMs: r.ms });
      console.error(
        `${name} run ${n}: submit ${submitMs} ms (compile+patch+check), rollout ${r.ms} ms, total ${Date.now() - t} ms`,
      );
      void s;
    }
  } finally {
    await env.close(o.keep);
  }
  const total = samples.map((s) => s.totalMs);
  return {
    processes: o.latencyProcesses,
    runs: samples.length,
    p50Ms: pct(total, 50),
    p95Ms: pct(total, 95),
    submitP50Ms: pct(
      samples.map((s) => s.submitMs),
      50,
    ),
    rolloutP50Ms: pct(
      samples.map((s) => s.rolloutMs),
      50,
    ),
    samples,
  };
}

async function fanout(o) {
  const env = await setup('fanout', {}, o.processes);
  try {
    await env.submit(1);
    const r = await env.rollout(1);
    console.error(`fanout: ${o.processes} processes updated in ${r.ms} ms`);
    return {
      processes: o.processes,
      rolloutMs: r.ms,
      pauseUsP50: pct(r.pauses, 50),
      pauseUsMax: Math.max(...r.pauses),
    };
  } finally {
    await env.close(o.keep);
  }
}

function launch(tool) {
  const out = execFileSync(path.join(root, 'tools', tool, 'start'), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const vars = {};
  for (const m of out.matchAll(/^(?:export )?(\w+)=['"]?([^'"\n]*?)['"]?$/gm)) vars[m[1]] = m[2];
  return vars;
}

async function main() {
  const o = args();
  const results = {
    when: new Date().toISOString(),
    host: { cpus: os.cpus().length, memGiB: Math.round(os.totalmem() / 2 ** 30) },
    options: o,
  };
  if (o.only.includes('embedded'))
    results.embedded = await latency('embedded', { KAFKA_BROKERS: '', DATABASE_URL: '' }, o);
  if (o.only.includes('kafka')) {
    const k = process.env.KAFKA_BROKERS ? { KAFKA_BROKERS: process.env.KAFKA_BROKERS } : launch('kafka');
    const p = process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : launch('postgres');
    try {
      const prefix = `bench-${Date.now()}`;
      results.kafka = await latency(
        'kafka',
        {
          KAFKA_BROKERS: k.KAFKA_BROKERS,
          DATABASE_URL: p.DATABASE_URL,
          KAFKA_TOPIC_PREFIX: prefix,
          DSU_GROUP_PREFIX: prefix,
        },
        o,
      );
    } finally {
      if (k.KAFKA_STATE_DIR)
        execFileSync(path.join(root, 'tools/kafka/stop'), [k.KAFKA_STATE_DIR], { stdio: 'inherit' });
      if (p.PG_STATE_DIR)
        execFileSync(path.join(root, 'tools/postgres/stop'), [p.PG_STATE_DIR], { stdio: 'inherit' });
    }
  }
  if (o.only.includes('fanout')) results.fanout = await fanout(o);
  const file = path.join(root, 'bench/results/pipeline.json');
  const prev = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  fs.writeFileSync(file, JSON.stringify({ ...prev, ...results }, null, 2) + '\n');
  console.log('| what | p50 | p95 | detail |\n| --- | --- | --- | --- |');
  for (const k of ['embedded', 'kafka']) {
    const r = results[k];
    if (r)
      console.log(
        `| submit -> ${r.processes} processes updated, ${k} | ${r.p50Ms} ms | ${r.p95Ms} ms | ${r.runs} runs; submit (compile+patch+check) p50 ${r.submitP50Ms} ms, rollout p50 ${r.rolloutP50Ms} ms |`,
      );
  }
  if (results.fanout)
    console.log(
      `| rollout of one patch to ${results.fanout.processes} processes on one host | ${results.fanout.rolloutMs} ms | | pause p50 ${results.fanout.pauseUsP50} us, max ${results.fanout.pauseUsMax} us |`,
    );
}

main().catch((err) => {
  console.error(`bench/pipeline: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
