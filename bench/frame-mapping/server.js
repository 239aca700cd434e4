#!/usr/bin/env node
// Stack-frame mapping on real servers (bench/README.md, "frame-mapping"):
//  1. steady state: what the capture/resume code costs per request, side by side with the same
//     dsu-cc build without it (`DSU_NO_FRAMES=1`, the live-code build): server-process
//     instructions per request under callgrind (target <= 1.01x) and throughput, on pollserver
//     (loop in serve(), --update-point serve:loop) and mainloop (loop in main);
//  2. pause of a main-loop update: mainloop v1 -> v2 (main replaced while it runs) applied and
//     rolled back --pairs times under light load with `dsu apply/rollback`: the pause and the
//     unwind / rebuild times the runtime reports (target: median pause <= 1 ms).
// Usage: bench/frame-mapping/server.js [--only steady,pause] [--runs N] [--pairs N]
//   [--cg-requests N] [--keep] [--out FILE]. Writes bench/results/frame-mapping-server.json.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  machineInfo, opt, flag, sleepMs, log, median, pct, round, ratio, orderFor, sh, copyDir, callgrindIr,
  createWorkspace, keepPreviousSections, serverStarter, loadgenTools,
} = require('../lib/harness');

const REPO = path.resolve(__dirname, '..', '..');
const FIX = path.join(REPO, 'test', 'fixtures');
const DSU_CC = path.join(REPO, 'libs', 'instrument', 'bin', 'dsu-cc.js');
const DSU_CLI = path.join(REPO, 'apps', 'cli', 'bin', 'dsu.js');
const ONLY = new Set((opt('--only', 'steady,pause') || '').split(',').filter(Boolean));
const RUNS = Math.max(1, Number(opt('--runs', 5)));
const PAIRS = Math.max(1, Number(opt('--pairs', 30)));
const REQUESTS = 100000;
const CG_REQUESTS = Math.max(1000, Number(opt('--cg-requests', 20000)));
const PIN = os.cpus().length >= 2 && fs.existsSync('/usr/bin/taskset');
const OUT = path.resolve(opt('--out', path.join(REPO, 'bench', 'results', 'frame-mapping-server.json')));
const { work: WORK, runDir: RUN_DIR, started, isAlive, stopPid } = createWorkspace({ prefix: 'dsu-bench-fm-', keep: flag('--keep') });
const LOADGEN = path.join(WORK, 'loadgen');
const { run: loadgen, startLight } = loadgenTools({ work: WORK, started, stopPid, pin: PIN, bin: LOADGEN });
const env = (extra = {}) => ({ ...process.env, DSU_RUN_DIR: RUN_DIR, ...extra });

/** The two builds compared: dsu-cc as shipped, and dsu-cc without capture/resume code. */
const VARIANTS = [
  { key: 'frames', label: 'dsu-cc (frame mapping, the default)', env: {} },
  { key: 'noFrames', label: 'dsu-cc DSU_NO_FRAMES=1 (live code only)', env: { DSU_NO_FRAMES: '1' } },
];
const SERVERS = [
  { name: 'pollserver', exe: 'pollserver', mode: 'p', env: { DSU_UPDATE_POINTS: 'serve:loop' }, loop: 'serve() (--update-point serve:loop)' },
  { name: 'mainloop', exe: 'mainloop', mode: 'q', env: {}, loop: 'main()' },
];

const startServerIn = serverStarter({ work: WORK, started, stopPid, pin: PIN });
const startServer = (bin, o = {}) => startServerIn(bin, ['0'], { ...o, env: env() });
function dsu(args, timeoutMs = 600_000) {
  const r = sh('node', [DSU_CLI, ...args, '--json'], { check: false, timeoutMs });
  let json = null;
  try { json = JSON.parse((r.stdout || '').trim().split('\n').pop()); } catch { /* not JSON */ }
  if (r.status !== 0 && !args.includes('apply') && !args.includes('rollback')) throw new Error(`dsu ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return json;
}

// ---------------------------------------------------------------- 1. steady state
function buildServer(s, v) {
  const dst = path.join(WORK, `${s.name}-${v.key}`);
  copyDir(path.join(FIX, s.name, 'v1'), dst);
  // -gdwarf-4: valgrind 3.19 cannot read clang-19's DWARF 5; debug info does not change the code.
  sh('make', ['-j2', `CC=${DSU_CC}`, 'CFLAGS=-O2 -gdwarf-4 -Wall'], { cwd: dst, env: env({ DSU_SOURCE_ROOT: dst, ...s.env, ...v.env }) });
  return path.join(dst, s.exe);
}
function callgrindPerRequest(bin, mode) {
  const base = 2000;
  const counts = {};
  for (const n of [base, base + CG_REQUESTS]) {
    const cg = path.join(WORK, `cg-${path.basename(path.dirname(bin))}-${n}.out`);
    const s = startServer(bin, { valgrind: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${cg}`], startMs: 60000 });
    try {
      loadgen(s.port, ['-c', '1', '-n', String(n), '-m', mode, '-d', '600000'], { timeoutMs: 600_000 });
    } finally {
      stopPid(s.pid, 60000);
    }
    counts[n] = callgrindIr(cg);
  }
  return round((counts[base + CG_REQUESTS] - counts[base]) / CG_REQUESTS, 1);
}
function benchSteady() {
  const res = {};
  for (const s of SERVERS) {
    const bins = Object.fromEntries(VARIANTS.map((v) => [v.key, buildServer(s, v)]));
    const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
    for (let r = 0; r < RUNS; r++) {
      for (const i of orderFor(r, VARIANTS.length)) {
        const v = VARIANTS[i];
        const srv = startServer(bins[v.key], { cpu: 1 });
        try {
          loadgen(srv.port, ['-c', '8', '-n', '5000', '-m', s.mode], { cpu: 0 });
          samples[v.key].push(loadgen(srv.port, ['-c', '8', '-n', String(REQUESTS), '-m', s.mode], { cpu: 0 }));
        } finally {
          stopPid(srv.pid);
        }
      }
      log(`steady ${s.name}: round ${r + 1}/${RUNS}: ${VARIANTS.map((v) => `${v.key} ${round(samples[v.key][r].seconds, 3)}s`).join(', ')}`);
    }
    const ir = {};
    for (const v of VARIANTS) {
      log(`steady ${s.name}: callgrind ${v.key}`);
      ir[v.key] = callgrindPerRequest(bins[v.key], s.mode);
    }
    const med = (k) => median(samples[k].map((x) => x.seconds));
    res[s.name] = {
      fixture: `test/fixtures/${s.name}/v1`,
      loop: s.loop,
      requests: REQUESTS,
      connections: 8,
      runs: RUNS,
      variants: Object.fromEntries(VARIANTS.map((v) => [v.key, {
        label: v.label,
        wallMedianS: round(med(v.key), 4),
        rpsMedian: round(median(samples[v.key].map((x) => x.rps)), 0),
        errors: samples[v.key].reduce((a, x) => a + x.errors + x.wrong, 0),
        callgrindPerRequestIr: ir[v.key],
      }])),
      ratios: {
        ir_per_request_frames_vs_noFrames: ratio(ir.frames, ir.noFrames),
        wall_frames_vs_noFrames: ratio(med('frames'), med('noFrames')),
        perRoundWallRatioMedian: round(median(samples.frames.map((x, i) => x.seconds / samples.noFrames[i].seconds)), 3),
      },
      callgrindMethod: `server under callgrind, 1 connection; (Ir after ${2000 + CG_REQUESTS} requests - Ir after 2000) / ${CG_REQUESTS}`,
    };
  }
  return res;
}

// ---------------------------------------------------------------- 2. pause of a main-loop update
function benchPause() {
  const dir = path.join(WORK, 'ml');
  for (const v of ['v1', 'v2']) {
    log(`pause: dsu build mainloop ${v}`);
    dsu(['build', path.join(FIX, 'mainloop', v), '--out', path.join(dir, v), '--label', v]);
  }
  dsu(['patch', path.join(dir, 'v1'), path.join(dir, 'v2'), '--out', path.join(dir, 'p12')]);
  const verdict = dsu(['check', path.join(dir, 'p12')]);
  if (verdict?.verdict !== 'approved') throw new Error(`dsu check: ${JSON.stringify(verdict)}`);
  const srv = startServer(path.join(dir, 'v1', 'mainloop'));
  const light = startLight(srv.port, 'q', 'mainloop');
  const rows = [];
  const failures = [];
  let load;
  sleepMs(300);
  try {
    for (let i = 0; i < PAIRS && !failures.length; i++) {
      for (const op of ['apply', 'rollback']) {
        const args = op === 'apply' ? ['apply', path.join(dir, 'p12')] : ['rollback'];
        const r = dsu([...args, '--pid', String(srv.pid), '--timeout-ms', '10000', '--run-dir', RUN_DIR]);
        const t = r?.frames?.[0];
        if (r?.outcome !== 'applied' || !t?.done) { failures.push({ pair: i, op, reply: r }); break; }
        rows.push({ op, pauseUs: r.pauseUs, updatePoint: r.updatePoint, frames: t.frames, waitUs: t.waitUs, unwindUs: t.unwindUs, rebuildUs: t.rebuildUs });
      }
    }
  } finally {
    load = light.stop();
  }
  const alive = isAlive(srv.pid);
  stopPid(srv.pid);
  const spread = (xs) => ({ median: median(xs), p90: pct(xs, 90), max: xs.length ? Math.max(...xs) : null });
  const stat = (k) => spread(rows.map((x) => x[k]));
  const stops = {};
  for (const r of rows) { const k = r.frames.join(' <- '); stops[k] = (stops[k] || 0) + 1; }
  return {
    fixture: 'test/fixtures/mainloop v1 -> v2 (main replaced while it runs), dsu apply / dsu rollback',
    load: '2 connections, PING, 1 ms think time',
    pairs: PAIRS, updates: rows.length, failures, samePidAlive: alive, load,
    pauseUs: stat('pauseUs'), waitUs: stat('waitUs'), unwindUs: stat('unwindUs'), rebuildUs: stat('rebuildUs'),
    unwindPlusRebuildUs: spread(rows.map((x) => x.unwindUs + x.rebuildUs)),
    serviceGapUs: spread(rows.map((x) => Math.max(x.pauseUs, x.waitUs + x.unwindUs + x.rebuildUs))),
    framesRebuilt: stops,
    note: 'pauseUs is what the runtime reports (the longest a thread was held parked: 0 when main was blocked in poll, which is not held); waitUs is commit to the thread taking its unwind request (its poll interrupted), unwindUs + rebuildUs the thread re-entering main in the new code; serviceGapUs = max(pauseUs, waitUs + unwindUs + rebuildUs): how long a request arriving at the commit could wait on the update',
  };
}

function main() {
  sh('cc', ['-O2', '-Wall', '-o', LOADGEN, path.join(REPO, 'bench', 'live-code', 'loadgen.c')]);
  const results = { bench: 'frame-mapping-server', machine: machineInfo({ repo: REPO, clang: '/usr/bin/clang-19', pinned: PIN ? 'server on CPU 1, client on CPU 0 (taskset)' : 'no' }) };
  if (ONLY.has('steady')) results.steady = benchSteady();
  if (ONLY.has('pause')) results.pause = benchPause();
  results.finished = new Date().toISOString();
  keepPreviousSections(results, OUT, ['steady', 'pause'], ONLY);
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  const s = results.steady;
  if (s) for (const k of Object.keys(s)) log(`steady ${k}: Ir/request frames ${s[k].variants.frames.callgrindPerRequestIr} vs ${s[k].variants.noFrames.callgrindPerRequestIr} (${s[k].ratios.ir_per_request_frames_vs_noFrames}x), wall ${s[k].ratios.wall_frames_vs_noFrames}x`);
  const p = results.pause;
  if (p) log(`pause: ${p.updates} updates, pause median ${p.pauseUs.median} us, service gap median ${p.serviceGapUs.median} us (p90 ${p.serviceGapUs.p90}), unwind+rebuild median ${p.unwindPlusRebuildUs.median} us, failures ${p.failures.length}`);
  log(`wrote ${OUT}`);
}
main();
