// The dashboard's cost to the gateway (issue 16): `dsu up` on the embedded default with a fleet of
// pollserver processes after one rollout, measured idle for --seconds without any page, then with
// the dashboard open in headless Chromium on its live feed, alternated --rounds times. CPU is the
// gateway process's utime+stime over the phase (% of one core), memory its RSS at the phase's end.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const cp = require('node:child_process');
const h = require('../lib/harness');

const REPO = path.resolve(__dirname, '../..');
const DSU = path.join(REPO, 'apps/cli/bin/dsu.js');
const SECONDS = Number(h.opt('--seconds', '30'));
const ROUNDS = Number(h.opt('--rounds', '2'));
const PROCESSES = Number(h.opt('--processes', '10'));
const CHROMIUM = process.env.DSU_CHROMIUM || '/usr/bin/chromium';
const TICK = Number(h.sh('getconf', ['CLK_TCK']).stdout.trim()); // /proc's CPU times are in these ticks

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** utime+stime (seconds) and RSS (MiB) of a pid, from /proc. */
function usage(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / TICK;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  return { cpu, rss };
}

async function phase(pid, seconds) {
  const a = usage(pid);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = usage(pid);
  return { cpuPct: h.round(((b.cpu - a.cpu) / seconds) * 100, 2), rssMiB: h.round(b.rss, 1) };
}

async function main() {
  const { chromium } = require('playwright-core');
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or DSU_CHROMIUM)`);
  const ws = h.createWorkspace({ prefix: 'dsu-bench-dashboard-', keep: h.flag('--keep') });
  const port = await freePort();
  const env = {
    ...process.env,
    DSU_HOME: path.join(ws.work, 'home'),
    DSU_RUN_DIR: ws.runDir,
    DSU_GATEWAY_PORT: String(port),
    DSU_HOST_ID: 'bench-host',
    KAFKA_BROKERS: '',
    DATABASE_URL: '',
  };
  const gateway = `http://127.0.0.1:${port}`;
  const upLog = path.join(ws.work, 'up.log');
  const up = cp.spawn(process.execPath, [DSU, 'up', '--json'], { env, stdio: ['ignore', fs.openSync(upLog, 'a'), fs.openSync(upLog, 'a')] });
  ws.started.add(up.pid);
  const t0 = Date.now();
  while (!/"url"/.test(fs.existsSync(upLog) ? fs.readFileSync(upLog, 'utf8') : '')) {
    if (Date.now() - t0 > 120_000) throw new Error(`dsu up did not start:\n${fs.readFileSync(upLog, 'utf8').slice(-2000)}`);
    h.sleepMs(200);
  }
  const cli = (...args) => h.sh(process.execPath, [DSU, ...args, '--json'], { env: { ...env, DSU_GATEWAY: gateway } });
  const fixture = (v) => path.join(REPO, 'test/fixtures/pollserver', v);
  h.log('submitting pollserver v1 and v2, starting the processes');
  cli('submit', fixture('v1'), '--program', 'pollserver', '--version', 'v1', '--update-point', 'serve:loop');
  cli('install', 'pollserver', 'v1', '--out', path.join(ws.work, 'v1'));
  for (let i = 0; i < PROCESSES; i++) {
    const p = cp.spawn(path.join(ws.work, 'v1', 'pollserver'), ['0'], { env: { ...env, DSU_RUN_DIR: ws.runDir }, stdio: 'ignore', detached: false });
    ws.started.add(p.pid);
  }
  cli('submit', fixture('v2'), '--program', 'pollserver', '--version', 'v2', '--update-point', 'serve:loop');
  h.sleepMs(3000);
  cli('rollout', 'pollserver', '--to', 'v2');
  const token = fs.readFileSync(path.join(env.DSU_HOME, 'token'), 'utf8').trim();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const rows = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      h.log(`round ${r + 1}/${ROUNDS}: ${SECONDS} s without a page`);
      const without = await phase(up.pid, SECONDS);
      const page = await browser.newPage();
      await page.goto(`${gateway}/#token=${token}`);
      await page.waitForSelector('#live[data-state=live]');
      await page.click('button[data-tab=fleet]');
      h.log(`round ${r + 1}/${ROUNDS}: ${SECONDS} s with the dashboard open (fleet, live)`);
      const withPage = await phase(up.pid, SECONDS);
      await page.close();
      rows.push({ without, withPage });
    }
  } finally {
    await browser.close();
  }
  const med = (k, f) => h.round(h.median(rows.map((x) => x[k][f])), 2);
  const results = {
    bench: 'dashboard',
    machine: h.machineInfo({ repo: REPO, pinned: false }),
    finished: new Date().toISOString(),
    setup: { processes: PROCESSES, secondsPerPhase: SECONDS, rounds: ROUNDS, refreshMs: Number(process.env.DSU_DASHBOARD_REFRESH_MS || 1000) },
    rounds: rows,
    summary: {
      idleCpuPctWithout: med('without', 'cpuPct'),
      idleCpuPctWithPage: med('withPage', 'cpuPct'),
      rssMiBWithout: med('without', 'rssMiB'),
      rssMiBWithPage: med('withPage', 'rssMiB'),
    },
  };
  const out = path.join(REPO, 'bench/results/dashboard.json');
  fs.writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  const s = results.summary;
  console.log(`| dsu up, ${PROCESSES} processes, idle | CPU (% of a core) | RSS (MiB) |\n|---|---|---|`);
  console.log(`| no page | ${s.idleCpuPctWithout} | ${s.rssMiBWithout} |\n| dashboard open | ${s.idleCpuPctWithPage} | ${s.rssMiBWithPage} |`);
  h.log(`wrote ${out}`);
  ws.stopPid(up.pid);
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
