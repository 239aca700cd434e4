#!/usr/bin/env node
// Live-code benchmarks: instrumentation cost (CPU and server), update pause, compile time.
// Native and dsu-cc builds are measured side by side in one run (interleaved rounds); see
// bench/README.md. Usage: bench/live-code/run [--only cpu,server,pause,compile] [--runs N]
//   [--pairs N] [--requests N] [--no-pin] [--keep] [--out FILE]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const FIX = path.join(REPO, 'test', 'fixtures');
const DSU_CC = path.join(REPO, 'libs', 'instrument', 'bin', 'dsu-cc.js');
const DSU_CLI = path.join(REPO, 'apps', 'cli', 'bin', 'dsu.js');
const CLANG = '/usr/bin/clang-19';

const { machineInfo, opt, flag, sleepMs, log, median, pct, round, ratio, orderFor, sh, timed, q, copyDir, callgrindIr, createWorkspace, keepPreviousSections, serverStarter, loadgenTools } = require('../lib/harness');

// ---------------------------------------------------------------- options
const ONLY = new Set((opt('--only', 'cpu,server,pause,compile') || '').split(',').filter(Boolean));
const RUNS = Math.max(1, Number(opt('--runs', process.env.BENCH_RUNS || 7)));
const COMPILE_RUNS = Math.max(1, Number(opt('--compile-runs', 3)));
const PAIRS = Math.max(1, Number(opt('--pairs', 30)));
const REQUESTS = Math.max(1000, Number(opt('--requests', 200000)));
const CG_REQUESTS = Math.max(1000, Number(opt('--cg-requests', 20000)));
const CONNS = 8;
const PIN = !flag('--no-pin') && os.cpus().length >= 2 && fs.existsSync('/usr/bin/taskset');
const OUT = path.resolve(opt('--out', path.join(REPO, 'bench', 'results', 'live-code.json')));

// ---------------------------------------------------------------- helpers
const { work: WORK, runDir: RUN_DIR, started, isAlive, stopPid } = createWorkspace({ prefix: 'dsu-bench-', keep: flag('--keep') });

// The three compilers, as `make CC=...` values. The fixtures' own CFLAGS (-O2 -g ...) are kept.
const VARIANTS = [
  { key: 'clang', label: 'clang-19 -O2', cc: CLANG },
  { key: 'gcc', label: 'cc -O2 (gcc 12)', cc: 'cc' },
  { key: 'dsu', label: 'dsu-cc (clang-19 -O2)', cc: DSU_CC },
];
function makeEnv(v, extra = {}) {
  return { ...process.env, DSU_RUN_DIR: RUN_DIR, ...(v.key === 'dsu' ? extra : {}) };
}
/** The fixture's own default CFLAGS with `-g` as `-gdwarf-4`: valgrind 3.19 cannot read the
 *  DWARF 5 that clang-19 emits (DW_FORM_addrx). Debug info does not change the generated code. */
function fixtureCflags(dir) {
  const mk = fs.readFileSync(path.join(dir, 'Makefile'), 'utf8');
  const m = /^CFLAGS\s*\??=\s*(.*)$/m.exec(mk);
  const toks = (m ? m[1] : '-O2 -g').trim().split(/\s+/);
  const out = toks.map((t) => (t === '-g' ? '-gdwarf-4' : t));
  if (!out.includes('-gdwarf-4')) out.push('-gdwarf-4');
  return out.join(' ');
}
function buildVariant(srcDir, dst, v, extraEnv = {}, clean = []) {
  copyDir(srcDir, dst);
  for (const c of clean) fs.rmSync(path.join(dst, c), { recursive: true, force: true });
  const cflags = fixtureCflags(dst);
  sh('make', ['-j2', `CC=${v.cc}`, `CFLAGS=${cflags}`], { cwd: dst, env: makeEnv(v, { DSU_SOURCE_ROOT: dst, ...extraEnv }) });
  return cflags;
}

const startServer = serverStarter({ work: WORK, started, stopPid, pin: PIN });

// ---------------------------------------------------------------- machine
function machine() {
  return machineInfo({ repo: REPO, clang: CLANG, pinned: PIN ? 'server on CPU 1, client on CPU 0 (taskset)' : 'no' });
}

// ---------------------------------------------------------------- loadgen binary
const LOADGEN = path.join(WORK, 'loadgen');
const { run: loadgen, startLight: startLoad } = loadgenTools({ work: WORK, started, stopPid, pin: PIN, bin: LOADGEN });
function buildLoadgen() {
  sh('cc', ['-O2', '-Wall', '-o', LOADGEN, path.join(__dirname, 'loadgen.c')]);
}

// ---------------------------------------------------------------- 1. CPU (codebase)
function codebaseStatus() {
  const dir = path.join(FIX, 'codebase');
  if (!fs.existsSync(path.join(dir, 'README.md')) && !flag('--force-codebase')) return { ready: false, reason: 'test/fixtures/codebase/README.md does not exist yet (codebase not finished)' };
  if (!fs.existsSync(path.join(dir, 'bench'))) return { ready: false, reason: 'test/fixtures/codebase/bench/ missing' };
  // `make test` on a private copy (the fixture directory itself is left untouched).
  const copy = path.join(WORK, 'codebase-test');
  copyDir(dir, copy);
  fs.rmSync(path.join(copy, 'build'), { recursive: true, force: true });
  const r = sh('make', ['-j2', 'test'], { cwd: copy, check: false, timeoutMs: 600_000 });
  const last = (r.stdout || '').trim().split('\n').pop();
  if (r.status !== 0) return { ready: false, reason: `make test fails: ${last}` };
  return { ready: true, makeTest: last };
}
function cpuScript(dir) {
  const b = path.join(dir, 'bench');
  const files = fs.readdirSync(b).filter((f) => /\.ml$/.test(f) || f === 'cpu.ml');
  const f = files.includes('cpu.ml') ? 'cpu.ml' : files[0];
  if (!f) throw new Error('no benchmark script under codebase/bench');
  return path.join('bench', f);
}
/** A shorter input for callgrind: the same script with its top-level workload sizes cut ~20x
 *  (call arguments >= 1000 divided by 20, fib(N) -> fib(N-7), tak(...) -> tak(12, 8, 4),
 *  the ack repeat count -> 1). The mix of work stays the same; its proportions shift a little. */
function shortenScript(text) {
  let hits = 0;
  const count = (f) => (...a) => (hits++, f(...a));
  let out = text
    .replace(/\bfib\((\d+)\)/g, count((_, n) => `fib(${Math.max(10, Number(n) - 7)})`))
    .replace(/\btak\(\d+, \d+, \d+\)/g, count(() => 'tak(12, 8, 4)'))
    .replace(/range\((\d+)\)\) a \+= ack/g, count(() => 'range(1)) a += ack'))
    .replace(/\b([a-z_]+)\((\d{4,})\)/g, count((_, f, n) => `${f}(${Math.max(1, Math.round(Number(n) / 20))})`));
  return { text: out, shortened: hits > 0 };
}
function benchCpu() {
  const st = codebaseStatus();
  if (!st.ready) { log(`cpu: skipped — ${st.reason}`); return { skipped: true, reason: st.reason }; }
  const src = path.join(FIX, 'codebase');
  const builds = {};
  let cflagsUsed = '';
  for (const v of VARIANTS) {
    const d = path.join(WORK, `cpu-${v.key}`);
    log(`cpu: building codebase with ${v.label}`);
    cflagsUsed = buildVariant(src, d, v, {}, ['build']);
    const bin = path.join(d, 'build', 'minilang');
    if (!fs.existsSync(bin)) throw new Error(`no ${bin}`);
    builds[v.key] = { dir: d, bin };
  }
  const script = cpuScript(builds.clang.dir);
  // Outputs must agree (the instrumented program computes the same thing).
  const outputs = {};
  for (const v of VARIANTS) outputs[v.key] = sh(builds[v.key].bin, [script], { cwd: builds[v.key].dir, env: makeEnv(v) }).stdout;
  const outputsMatch = outputs.clang === outputs.gcc && outputs.clang === outputs.dsu;
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const i of orderFor(r, VARIANTS.length)) {
      const v = VARIANTS[i];
      const t = timed(`${q(builds[v.key].bin)} ${q(script)}`, { cwd: builds[v.key].dir, env: makeEnv(v) });
      samples[v.key].push(t);
    }
    log(`cpu: round ${r + 1}/${RUNS}: ${VARIANTS.map((v) => `${v.key} ${samples[v.key][r].wall}s`).join(', ')}`);
  }
  // callgrind on a shorter input, one run each.
  const full = fs.readFileSync(path.join(builds.clang.dir, script), 'utf8');
  const short = shortenScript(full);
  const shortName = 'bench-short.ml';
  const ir = {};
  for (const v of VARIANTS) {
    fs.writeFileSync(path.join(builds[v.key].dir, shortName), short.text);
    const cg = path.join(WORK, `cg-cpu-${v.key}.out`);
    log(`cpu: callgrind ${v.key}`);
    sh('valgrind', ['--tool=callgrind', `--callgrind-out-file=${cg}`, builds[v.key].bin, shortName], { cwd: builds[v.key].dir, env: makeEnv(v), timeoutMs: 1_200_000 });
    ir[v.key] = callgrindIr(cg);
  }
  // Diagnostics (simulated, deterministic): cachegrind's cache and branch simulation on the short
  // input, to see where time goes beyond instruction count (perf counters are not available here).
  const diag = {};
  for (const v of [VARIANTS[0], VARIANTS[2]]) {
    log(`cpu: cachegrind branch/cache simulation ${v.key}`);
    const r = sh('valgrind', ['--tool=cachegrind', '--cache-sim=yes', '--branch-sim=yes', `--cachegrind-out-file=${path.join(WORK, `cachegrind-${v.key}.out`)}`, builds[v.key].bin, shortName], { cwd: builds[v.key].dir, env: makeEnv(v), timeoutMs: 1_200_000 });
    const num = (re) => { const m = re.exec(r.stderr); return m ? Number(m[1].replace(/,/g, '')) : null; };
    diag[v.key] = {
      instructions: num(/I\s+refs:\s+([\d,]+)/),
      dataRefs: num(/D\s+refs:\s+([\d,]+)/),
      d1Misses: num(/D1\s+misses:\s+([\d,]+)/),
      llMisses: num(/LL misses:\s+([\d,]+)/),
      condBranches: num(/Branches:\s+[\d,]+\s+\(\s*([\d,]+) cond/),
      indirectBranches: num(/Branches:.*\+\s*([\d,]+) ind/),
      condMispredicts: num(/Mispredicts:\s+[\d,]+\s+\(\s*([\d,]+) cond/),
      indirectMispredicts: num(/Mispredicts:.*\+\s*([\d,]+) ind/),
    };
  }
  const med = (k, f) => median(samples[k].map((s) => s[f]));
  const res = { skipped: false, diagnostics: diag, cflags: cflagsUsed, makeTest: st.makeTest, script: `test/fixtures/codebase/${script}`, outputsMatch, runs: RUNS, callgrindInput: short.shortened ? 'cpu.ml with top-level workload sizes / ~20 (see shortenScript)' : 'cpu.ml (full)', variants: {} };
  for (const v of VARIANTS) {
    res.variants[v.key] = { label: v.label, wallMedianS: med(v.key, 'wall'), wallMinS: Math.min(...samples[v.key].map((x) => x.wall)), cpuMedianS: round(med(v.key, 'cpu'), 3), wallSamplesS: samples[v.key].map((s) => s.wall), cpuSamplesS: samples[v.key].map((s) => round(s.cpu, 3)), instructions: ir[v.key] };
  }
  res.ratios = {
    wall_dsu_vs_clang: ratio(med('dsu', 'wall'), med('clang', 'wall')),
    wall_dsu_vs_gcc: ratio(med('dsu', 'wall'), med('gcc', 'wall')),
    wallMin_dsu_vs_clang: ratio(Math.min(...samples.dsu.map((x) => x.wall)), Math.min(...samples.clang.map((x) => x.wall))),
    cpu_dsu_vs_clang: ratio(med('dsu', 'cpu'), med('clang', 'cpu')),
    cpu_dsu_vs_gcc: ratio(med('dsu', 'cpu'), med('gcc', 'cpu')),
    ir_dsu_vs_clang: ratio(ir.dsu, ir.clang),
    ir_dsu_vs_gcc: ratio(ir.dsu, ir.gcc),
    ir_gcc_vs_clang: ratio(ir.gcc, ir.clang),
  };
  res.perRoundWallRatioMedian_dsu_vs_clang = round(median(samples.dsu.map((s, i) => s.wall / samples.clang[i].wall)), 3);
  return res;
}

// ---------------------------------------------------------------- 2. server (pollserver v1)
function benchServer() {
  const src = path.join(FIX, 'pollserver', 'v1');
  const builds = {};
  let cflagsUsed = '';
  for (const v of VARIANTS) {
    const d = path.join(WORK, `srv-${v.key}`);
    log(`server: building pollserver v1 with ${v.label}`);
    cflagsUsed = buildVariant(src, d, v, { DSU_UPDATE_POINTS: 'serve:loop' });
    builds[v.key] = path.join(d, 'pollserver');
  }
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const i of orderFor(r, VARIANTS.length)) {
      const v = VARIANTS[i];
      const s = startServer(builds[v.key], ['0'], { cpu: 1, env: makeEnv(v) });
      try {
        loadgen(s.port, ['-c', String(CONNS), '-n', '5000', '-m', 'ps'], { cpu: 0 }); // warm-up
        const res = loadgen(s.port, ['-c', String(CONNS), '-n', String(REQUESTS), '-m', 'ps'], { cpu: 0 });
        samples[v.key].push(res);
      } finally {
        stopPid(s.pid);
      }
    }
    log(`server: round ${r + 1}/${RUNS}: ${VARIANTS.map((v) => `${v.key} ${round(samples[v.key][r].seconds, 3)}s`).join(', ')}`);
  }
  // callgrind: server-process instructions per request = (Ir(N + base) - Ir(base)) / N.
  const ir = {};
  const base = 2000;
  for (const v of VARIANTS) {
    const counts = {};
    for (const n of [base, base + CG_REQUESTS]) {
      const cg = path.join(WORK, `cg-srv-${v.key}-${n}.out`);
      log(`server: callgrind ${v.key} (${n} requests)`);
      const s = startServer(builds[v.key], ['0'], { env: makeEnv(v), valgrind: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${cg}`], startMs: 60000 });
      try {
        // One connection: one poll() wake-up per request, so the count does not depend on batching.
        loadgen(s.port, ['-c', '1', '-n', String(n), '-m', 'ps', '-d', '600000']);
      } finally {
        stopPid(s.pid, 60000);
      }
      counts[n] = callgrindIr(cg);
    }
    ir[v.key] = { total: counts[base + CG_REQUESTS], perRequest: round((counts[base + CG_REQUESTS] - counts[base]) / CG_REQUESTS, 1) };
  }
  const med = (k) => median(samples[k].map((s) => s.seconds));
  const res = { fixture: 'test/fixtures/pollserver/v1', cflags: cflagsUsed, dsuUpdatePoints: 'serve:loop', connections: CONNS, requests: REQUESTS, mix: 'PING / SET k v / GET k', runs: RUNS, variants: {} };
  for (const v of VARIANTS) {
    res.variants[v.key] = {
      label: v.label,
      wallMedianS: round(med(v.key), 4),
      wallMinS: round(Math.min(...samples[v.key].map((x) => x.seconds)), 4),
      rpsMedian: round(median(samples[v.key].map((s) => s.rps)), 0),
      p99LatencyUsMedian: median(samples[v.key].map((s) => s.p99LatencyUs)),
      wallSamplesS: samples[v.key].map((s) => round(s.seconds, 4)),
      errors: samples[v.key].reduce((a, s) => a + s.errors + s.wrong, 0),
      callgrindPerRequestIr: ir[v.key].perRequest,
      callgrindTotalIr: ir[v.key].total,
    };
  }
  res.callgrindRequests = CG_REQUESTS;
  res.callgrindMethod = `server under callgrind, 1 connection; (Ir after ${base + CG_REQUESTS} requests - Ir after ${base}) / ${CG_REQUESTS}`;
  res.ratios = {
    wall_dsu_vs_clang: ratio(med('dsu'), med('clang')),
    wall_dsu_vs_gcc: ratio(med('dsu'), med('gcc')),
    wallMin_dsu_vs_clang: ratio(Math.min(...samples.dsu.map((x) => x.seconds)), Math.min(...samples.clang.map((x) => x.seconds))),
    ir_per_request_dsu_vs_clang: ratio(ir.dsu.perRequest, ir.clang.perRequest),
    ir_per_request_dsu_vs_gcc: ratio(ir.dsu.perRequest, ir.gcc.perRequest),
  };
  res.perRoundWallRatioMedian_dsu_vs_clang = round(median(samples.dsu.map((s, i) => s.seconds / samples.clang[i].seconds)), 3);
  return res;
}

// ---------------------------------------------------------------- 3. update pause
function dsuCli(args, timeoutMs = 120_000) {
  const r = sh('node', [DSU_CLI, ...args], { check: false, timeoutMs });
  let json = null;
  try { json = JSON.parse((r.stdout || '').trim().split('\n').pop()); } catch { /* not json */ }
  return { code: r.status, json, stderr: r.stderr };
}
/** `dsu check`: dsu apply takes only checked bundles signed by a trusted key (the local one). */
function checkAndSign(bundle) {
  const r = dsuCli(['check', bundle, '--json'], 600_000);
  if (r.code !== 0 || r.json?.verdict !== 'approved') throw new Error(`dsu check ${bundle}: ${JSON.stringify(r.json) || r.stderr}`);
}
/** The workerpool main thread waits in sigwait(), which dsu-cc does not wrap; this bench-only
 *  variant waits in nanosleep() (wrapped) and checks for a pending SIGTERM/SIGINT instead. */
function workerpoolBenchVariant(srcDir, dst) {
  copyDir(srcDir, dst);
  const f = path.join(dst, 'main.c');
  const text = fs.readFileSync(f, 'utf8');
  const re = /while \(sigwait\(&set, &sig\) != 0\) \{[^}]*\}/;
  if (!re.test(text)) return false;
  fs.writeFileSync(f, text.replace(re, `for (;;) { /* bench variant: a wrapped blocking call instead of sigwait() */
        sigset_t pend;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
        if (sigpending(&pend) == 0 && (sigismember(&pend, SIGTERM) || sigismember(&pend, SIGINT)))
            break;
    }
    (void)sig;`).replace('#include <unistd.h>', '#include <time.h>\n#include <unistd.h>'));
  return true;
}
function pauseRun(name, buildDir, exe, patchDir, mode, pairs) {
  const s = startServer(path.join(buildDir, exe), ['0'], { env: { ...process.env, DSU_RUN_DIR: RUN_DIR } });
  const applies = [], rollbacks = [], failures = [];
  const controls = {};
  let load;
  try {
    // Controls: the same light load with no update (5 s), then with 10 `dsu status` CLI calls
    // (same node start-up CPU load as apply/rollback, no update).
    let l = startLoad(s.port, mode, `${name}-idle`);
    sleepMs(5000);
    controls.noUpdate = l.stop();
    l = startLoad(s.port, mode, `${name}-status`);
    sleepMs(300);
    for (let i = 0; i < 10; i++) dsuCli(['status', '--pid', String(s.pid), '--run-dir', RUN_DIR, '--json']);
    controls.statusCallsOnly = l.stop();
    l = startLoad(s.port, mode, `${name}-updates`);
    sleepMs(300);
    try {
      for (let i = 0; i < pairs; i++) {
        const t0 = process.hrtime.bigint();
        const a = dsuCli(['apply', patchDir, '--pid', String(s.pid), '--timeout-ms', '10000', '--run-dir', RUN_DIR, '--json']);
        const aMs = Number(process.hrtime.bigint() - t0) / 1e6;
        if (a.json?.outcome !== 'applied') { failures.push({ pair: i, op: 'apply', ...(a.json || { stderr: a.stderr.slice(-300) }) }); break; }
        applies.push({ pauseUs: a.json.pauseUs, stageMs: a.json.stageMs, updatePoint: a.json.updatePoint, cliMs: round(aMs, 1) });
        const t1 = process.hrtime.bigint();
        const b = dsuCli(['rollback', '--pid', String(s.pid), '--timeout-ms', '10000', '--run-dir', RUN_DIR, '--json']);
        const bMs = Number(process.hrtime.bigint() - t1) / 1e6;
        if (b.json?.outcome !== 'applied') { failures.push({ pair: i, op: 'rollback', ...(b.json || { stderr: b.stderr.slice(-300) }) }); break; }
        rollbacks.push({ pauseUs: b.json.pauseUs, updatePoint: b.json.updatePoint, cliMs: round(bMs, 1) });
      }
    } finally {
      load = l.stop();
    }
  } catch (e) {
    stopPid(s.pid);
    throw e;
  }
  const status = dsuCli(['status', '--pid', String(s.pid), '--run-dir', RUN_DIR, '--json']);
  const alive = isAlive(s.pid);
  stopPid(s.pid);
  const stats = (xs) => ({ n: xs.length, median: median(xs), p90: pct(xs, 90), max: xs.length ? Math.max(...xs) : null });
  const allPause = [...applies.map((a) => a.pauseUs), ...rollbacks.map((b) => b.pauseUs)];
  const points = {};
  for (const x of [...applies, ...rollbacks]) points[x.updatePoint] = (points[x.updatePoint] || 0) + 1;
  return {
    pairs, completedPairs: rollbacks.length, failures, samePidAlive: alive, load, controls,
    pauseUs: { all: stats(allPause), apply: stats(applies.map((a) => a.pauseUs)), rollback: stats(rollbacks.map((b) => b.pauseUs)) },
    stageMs: stats(applies.map((a) => a.stageMs)),
    cliApplyMs: stats(applies.map((a) => a.cliMs)),
    cliRollbackMs: stats(rollbacks.map((b) => b.cliMs)),
    updatePoints: points,
    historyLength: Array.isArray(status.json?.patches) ? status.json.patches.length : null,
    applies, rollbacks,
  };
}
function benchPause() {
  const res = {};
  // (a) workerpool as shipped: main thread in sigwait().
  const wp = path.join(WORK, 'wp');
  for (const v of ['v1', 'v2']) {
    log(`pause: dsu build workerpool ${v}`);
    const r = dsuCli(['build', path.join(FIX, 'workerpool', v), '--out', path.join(wp, v), '--label', v, '--json'], 600_000);
    if (r.code !== 0) throw new Error(`dsu build workerpool ${v}: ${r.stderr}`);
  }
  let r = dsuCli(['patch', path.join(wp, 'v1'), path.join(wp, 'v2'), '--out', path.join(wp, 'p12'), '--json'], 600_000);
  if (r.code !== 0) throw new Error(`dsu patch workerpool: ${r.stderr}`);
  checkAndSign(path.join(wp, 'p12'));
  {
    const s = startServer(path.join(wp, 'v1', 'workerpool'), ['0'], { env: { ...process.env, DSU_RUN_DIR: RUN_DIR } });
    const a = dsuCli(['apply', path.join(wp, 'p12'), '--pid', String(s.pid), '--timeout-ms', '2000', '--run-dir', RUN_DIR, '--json']);
    stopPid(s.pid);
    res.workerpoolAsShipped = { outcome: a.json?.outcome, reasons: a.json?.reasons, note: 'one idle apply on the unmodified fixture (main thread in sigwait())' };
    log(`pause: workerpool as shipped, idle apply: ${a.json?.outcome} ${JSON.stringify(a.json?.reasons || [])}`);
  }
  const wpLoad = '2 connections, PING / WORK 100, 1 ms think time';
  const wpThreads = '4 workers + acceptor + main (+ libdsu control thread)';
  if (res.workerpoolAsShipped.outcome === 'applied') {
    log(`pause: workerpool ${PAIRS} apply/rollback pairs under light load`);
    res.workerpool = { fixture: 'test/fixtures/workerpool v1->v2 (unmodified)', threads: wpThreads, load: wpLoad, ...pauseRun('wp', path.join(wp, 'v1'), 'workerpool', path.join(wp, 'p12'), 'wp', PAIRS) };
  } else {
    // Fallback for runtimes without a sigwait() wrapper: a bench-only copy whose main thread
    // waits in nanosleep() (wrapped) instead.
    const wpb = path.join(WORK, 'wpb');
    let ok = true;
    for (const v of ['v1', 'v2']) ok = workerpoolBenchVariant(path.join(FIX, 'workerpool', v), path.join(wpb, 'src', v)) && ok;
    if (ok) {
      for (const v of ['v1', 'v2']) {
        log(`pause: dsu build workerpool bench variant ${v}`);
        r = dsuCli(['build', path.join(wpb, 'src', v), '--out', path.join(wpb, v), '--label', v, '--json'], 600_000);
        if (r.code !== 0) throw new Error(`dsu build workerpool-bench ${v}: ${r.stderr}`);
      }
      r = dsuCli(['patch', path.join(wpb, 'v1'), path.join(wpb, 'v2'), '--out', path.join(wpb, 'p12'), '--json'], 600_000);
      if (r.code !== 0) throw new Error(`dsu patch workerpool-bench: ${r.stderr}`);
      checkAndSign(path.join(wpb, 'p12'));
      log(`pause: workerpool (bench variant) ${PAIRS} apply/rollback pairs under light load`);
      res.workerpool = { fixture: 'test/fixtures/workerpool v1->v2, main.c: sigwait() loop -> nanosleep()+sigpending() loop (bench copy only)', threads: wpThreads, load: wpLoad, ...pauseRun('wp', path.join(wpb, 'v1'), 'workerpool', path.join(wpb, 'p12'), 'wp', PAIRS) };
    } else {
      res.workerpool = { skipped: true, reason: 'the shipped workerpool cannot be updated and its main.c no longer has the sigwait loop this bench rewrites' };
    }
  }
  // (c) pollserver (single thread, update point serve:loop), unmodified fixture.
  const ps = path.join(WORK, 'ps');
  for (const v of ['v1', 'v2']) {
    log(`pause: dsu build pollserver ${v}`);
    r = dsuCli(['build', path.join(FIX, 'pollserver', v), '--out', path.join(ps, v), '--label', v, '--update-point', 'serve:loop', '--json'], 600_000);
    if (r.code !== 0) throw new Error(`dsu build pollserver ${v}: ${r.stderr}`);
  }
  r = dsuCli(['patch', path.join(ps, 'v1'), path.join(ps, 'v2'), '--out', path.join(ps, 'p12'), '--json'], 600_000);
  if (r.code !== 0) throw new Error(`dsu patch pollserver: ${r.stderr}`);
  checkAndSign(path.join(ps, 'p12'));
  log(`pause: pollserver ${PAIRS} apply/rollback pairs under light load`);
  res.pollserver = { fixture: 'test/fixtures/pollserver v1->v2 (unmodified), --update-point serve:loop', load: '2 connections, PING / SET / GET, 1 ms think time', ...pauseRun('ps', path.join(ps, 'v1'), 'pollserver', path.join(ps, 'p12'), 'ps', PAIRS) };
  return res;
}

// ---------------------------------------------------------------- 4. compile time
/** Where dsu-cc's time goes, per build (median over the rounds): sums over the units of the
 *  DSU_CC_TIMING steps, in ms. analyze = preprocessing + JSON AST + decoding; the compile of the
 *  instrumented unit and its layout probe run at the same time (wall from the end of the edits). */
function compileSteps(files) {
  const perRound = files.map((f) => {
    const units = fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.startsWith('{"dsuCcTiming"')).map((l) => JSON.parse(l));
    const sum = (g) => units.reduce((a, u) => a + (g(u) || 0), 0);
    return {
      units: units.length,
      totalMs: sum((u) => u.totalMs),
      preprocessMs: sum((u) => u.preprocessMs),
      astMs: sum((u) => u.astMs),
      analyzeMs: sum((u) => u.marks.analyze),
      planAndEditsMs: sum((u) => u.marks.edits - u.marks.analyze),
      compileMs: sum((u) => u.marks.compile - u.marks.edits),
      layoutProbeMs: sum((u) => u.layoutMs),
      nodeCpuMs: sum((u) => u.nodeCpuMs),
    };
  }).filter((r) => r.units > 0);
  if (perRound.length === 0) return undefined;
  return Object.fromEntries(Object.keys(perRound[0]).map((k) => [k, median(perRound.map((r) => r[k]))]));
}

function benchCompile(codebaseReady) {
  const targets = codebaseReady
    ? [{ name: 'codebase', src: path.join(FIX, 'codebase'), clean: ['build'] }]
    : ['pollserver/v1', 'workerpool/v1', 'multifile/v1'].map((f) => ({ name: f, src: path.join(FIX, f), clean: [] }));
  const res = { targets: targets.map((t) => `test/fixtures/${t.name}`), runs: COMPILE_RUNS, jobs: 1, variants: {} };
  // dsu: the whole build through one compile server (what `dsu build` does); dsuPerStep: one
  // node process per compile step (plain `make CC=dsu-cc`), for reference.
  const CV = [...VARIANTS, { key: 'dsuPerStep', label: 'dsu-cc, node per step (no server)', cc: DSU_CC }];
  const makeCmd = (v) => (v.key === 'dsu' ? `node ${q(DSU_CC)} --serve -- sh -c 'make -j1 CC="$CC"'` : `make -j1 CC=${q(v.cc)}`);
  const samples = Object.fromEntries(CV.map((v) => [v.key, []]));
  const stepLogs = [];
  for (let r = 0; r < COMPILE_RUNS; r++) {
    for (const i of orderFor(r, CV.length)) {
      const v = CV[i];
      let wall = 0, cpu = 0;
      for (const t of targets) {
        const d = path.join(WORK, `compile-${v.key}-${t.name.replace(/\//g, '-')}`);
        copyDir(t.src, d);
        for (const c of t.clean) fs.rmSync(path.join(d, c), { recursive: true, force: true });
        sh('make', ['clean'], { cwd: d, check: false });
        // dsu: DSU_CC_TIMING=1 logs each unit's steps (one JSON line per unit, see dsu-cc.ts)
        const stderrFile = v.key === 'dsu' ? path.join(WORK, `compile-steps-${t.name.replace(/\//g, '-')}-${r}.log`) : undefined;
        const env = { ...makeEnv(v), ...(v.key.startsWith('dsu') ? { DSU_SOURCE_ROOT: d } : {}), ...(stderrFile ? { DSU_CC_TIMING: '1' } : {}) };
        const tm = timed(makeCmd(v), { cwd: d, env, stderrFile, timeoutMs: 900_000 });
        if (stderrFile) stepLogs.push(stderrFile);
        wall += tm.wall;
        cpu += tm.cpu;
      }
      samples[v.key].push({ wall: round(wall, 3), cpu: round(cpu, 3) });
    }
    log(`compile: round ${r + 1}/${COMPILE_RUNS}: ${CV.map((v) => `${v.key} ${samples[v.key][r].wall}s`).join(', ')}`);
  }
  const med = (k, f = 'wall') => median(samples[k].map((s) => s[f]));
  for (const v of CV) res.variants[v.key] = { label: v.label, wallMedianS: med(v.key), cpuMedianS: med(v.key, 'cpu'), samples: samples[v.key] };
  res.dsuSteps = compileSteps(stepLogs);
  // Where dsu-cc's time goes: one node start (dsu-cc --version passes through to cc), and the
  // largest unit alone (fixed per-unit cost vs per-line cost).
  const t = timed(`node ${q(DSU_CC)} --version`, {});
  res.dsuCcPassthroughStartS = t.wall;
  if (codebaseReady) {
    const d = path.join(WORK, 'compile-unit');
    copyDir(path.join(FIX, 'codebase'), d);
    const srcs = fs.readdirSync(path.join(d, 'src')).filter((f) => f.endsWith('.c'));
    const big = srcs.map((f) => [f, fs.statSync(path.join(d, 'src', f)).size]).sort((a, b) => b[1] - a[1])[0][0];
    const flags = '-std=c11 -D_POSIX_C_SOURCE=200809L -O2 -g -Wall -Wextra';
    const u = { clang: [], gcc: [], dsu: [] };
    for (let r = 0; r < COMPILE_RUNS; r++) {
      for (const i of orderFor(r, VARIANTS.length)) {
        const v = VARIANTS[i];
        u[v.key].push(timed(`${q(v.cc)} ${flags} -c -o ${q(path.join(d, `unit-${v.key}.o`))} ${q(path.join('src', big))}`, { cwd: d, env: makeEnv(v, { DSU_SOURCE_ROOT: d }) }).wall);
      }
    }
    res.largestUnit = { unit: `src/${big}`, lines: fs.readFileSync(path.join(d, 'src', big), 'utf8').split('\n').length, wallMedianS: Object.fromEntries(Object.entries(u).map(([k, xs]) => [k, median(xs)])) };
    res.largestUnit.ratio_dsu_vs_clang = ratio(res.largestUnit.wallMedianS.dsu, res.largestUnit.wallMedianS.clang);
  }
  res.ratios = {
    wall_dsu_vs_gcc: ratio(med('dsu'), med('gcc')),
    wall_dsu_vs_clang: ratio(med('dsu'), med('clang')),
    wall_clang_vs_gcc: ratio(med('clang'), med('gcc')),
    cpu_dsu_vs_gcc: ratio(med('dsu', 'cpu'), med('gcc', 'cpu')),
    cpu_dsu_vs_clang: ratio(med('dsu', 'cpu'), med('clang', 'cpu')),
    wall_dsuPerStep_vs_clang: ratio(med('dsuPerStep'), med('clang')),
  };
  return res;
}

// ---------------------------------------------------------------- report
function table(results) {
  const L = [];
  const f = (x, d = 3) => (x == null ? '—' : String(round(x, d)));
  L.push('| benchmark | clang-19 -O2 | cc -O2 (gcc 12) | dsu-cc | dsu/clang | dsu/gcc | target |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  const c = results.cpu;
  if (c && !c.skipped) {
    const V = c.variants;
    L.push(`| CPU: codebase bench, wall s (median of ${c.runs}) | ${f(V.clang.wallMedianS)} | ${f(V.gcc.wallMedianS)} | ${f(V.dsu.wallMedianS)} | ${f(c.ratios.wall_dsu_vs_clang)} | ${f(c.ratios.wall_dsu_vs_gcc)} | |`);
    L.push(`| CPU: codebase bench, user+sys s (median) | ${f(V.clang.cpuMedianS)} | ${f(V.gcc.cpuMedianS)} | ${f(V.dsu.cpuMedianS)} | ${f(c.ratios.cpu_dsu_vs_clang)} | ${f(c.ratios.cpu_dsu_vs_gcc)} | |`);
    L.push(`| CPU: codebase bench, instructions (callgrind, short input) | ${V.clang.instructions.toExponential(3)} | ${V.gcc.instructions.toExponential(3)} | ${V.dsu.instructions.toExponential(3)} | ${f(c.ratios.ir_dsu_vs_clang)} | ${f(c.ratios.ir_dsu_vs_gcc)} | |`);
    if (c.diagnostics?.clang && c.diagnostics?.dsu) {
      const D = c.diagnostics;
      L.push(`| CPU: indirect calls/jumps (cachegrind sim, short input) | ${D.clang.indirectBranches?.toExponential(2)} | | ${D.dsu.indirectBranches?.toExponential(2)} | ${f(ratio(D.dsu.indirectBranches, D.clang.indirectBranches), 2)} | | |`);
      L.push(`| CPU: data refs / D1 misses (cachegrind sim, short input) | ${D.clang.dataRefs?.toExponential(2)} / ${D.clang.d1Misses?.toExponential(2)} | | ${D.dsu.dataRefs?.toExponential(2)} / ${D.dsu.d1Misses?.toExponential(2)} | ${f(ratio(D.dsu.dataRefs, D.clang.dataRefs), 2)} / ${f(ratio(D.dsu.d1Misses, D.clang.d1Misses), 2)} | | |`);
    }
  } else if (c) {
    L.push(`| CPU: codebase bench | skipped: ${c.reason} | | | | | |`);
  }
  const s = results.server;
  if (s) {
    const V = s.variants;
    L.push(`| server: pollserver ${s.requests / 1000}k req, ${s.connections} conns, wall s (median of ${s.runs}) | ${f(V.clang.wallMedianS)} | ${f(V.gcc.wallMedianS)} | ${f(V.dsu.wallMedianS)} | ${f(s.ratios.wall_dsu_vs_clang)} | ${f(s.ratios.wall_dsu_vs_gcc)} | ≤ 1.03 |`);
    L.push(`| server: throughput req/s (median) | ${f(V.clang.rpsMedian, 0)} | ${f(V.gcc.rpsMedian, 0)} | ${f(V.dsu.rpsMedian, 0)} | | | |`);
    L.push(`| server: instructions per request (callgrind, server process) | ${f(V.clang.callgrindPerRequestIr, 0)} | ${f(V.gcc.callgrindPerRequestIr, 0)} | ${f(V.dsu.callgrindPerRequestIr, 0)} | ${f(s.ratios.ir_per_request_dsu_vs_clang)} | ${f(s.ratios.ir_per_request_dsu_vs_gcc)} | ≤ 1.03 |`);
  }
  const k = results.compile;
  if (k) {
    const V = k.variants;
    if (k.largestUnit) L.push(`| compile: largest unit alone (${k.largestUnit.unit}, ${k.largestUnit.lines} lines), wall s (median) | ${f(k.largestUnit.wallMedianS.clang)} | ${f(k.largestUnit.wallMedianS.gcc)} | ${f(k.largestUnit.wallMedianS.dsu)} | ${f(k.largestUnit.ratio_dsu_vs_clang)} | ${f(ratio(k.largestUnit.wallMedianS.dsu, k.largestUnit.wallMedianS.gcc))} | |`);
    L.push(`| compile: ${k.targets.map((t) => t.replace('test/fixtures/', '')).join(' + ')}, make -j1 from clean (dsu: one compile server, as in \`dsu build\`), wall s (median of ${k.runs}) | ${f(V.clang.wallMedianS)} | ${f(V.gcc.wallMedianS)} | ${f(V.dsu.wallMedianS)} | ${f(k.ratios.wall_dsu_vs_clang)} | ${f(k.ratios.wall_dsu_vs_gcc)} | ≤ 3× |`);
    L.push(`| compile: same, user+sys s (median) | ${f(V.clang.cpuMedianS)} | ${f(V.gcc.cpuMedianS)} | ${f(V.dsu.cpuMedianS)} | ${f(k.ratios.cpu_dsu_vs_clang)} | ${f(k.ratios.cpu_dsu_vs_gcc)} | |`);
    if (k.dsuSteps) {
      const S = k.dsuSteps;
      L.push(`| compile: dsu-cc steps summed over ${S.units} units (DSU_CC_TIMING), ms: preprocess ${S.preprocessMs}, JSON AST ${S.astMs}, plan+edits ${S.planAndEditsMs}, compile ${S.compileMs} (layout probe ${S.layoutProbeMs} alongside), node CPU ${S.nodeCpuMs} | | | ${f(S.totalMs / 1000)} | | | |`);
    }
    if (V.dsuPerStep) L.push(`| compile: same, dsu-cc without a server (node per step), wall s | ${f(V.clang.wallMedianS)} | ${f(V.gcc.wallMedianS)} | ${f(V.dsuPerStep.wallMedianS)} | ${f(k.ratios.wall_dsuPerStep_vs_clang)} | | |`);
  }
  const p = results.pause;
  if (p) {
    L.push('');
    L.push('| update pause | pairs done | pause µs median | p90 | max | stage ms median | p90 | max | `dsu apply` CLI ms median | update points | client max latency µs during updates (p99); controls | load errors |');
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const [name, x] of [['workerpool (6 threads)', p.workerpool], ['pollserver (1 thread)', p.pollserver]]) {
      if (!x || x.skipped) { L.push(`| ${name} | skipped${x ? `: ${x.reason}` : ''} | | | | | | | | | | |`); continue; }
      const pts = Object.entries(x.updatePoints).map(([k2, n]) => `${k2}×${n}`).join(', ');
      L.push(`| ${name}, apply+rollback | ${x.completedPairs}/${x.pairs} | ${f(x.pauseUs.all.median, 0)} | ${f(x.pauseUs.all.p90, 0)} | ${f(x.pauseUs.all.max, 0)} | ${f(x.stageMs.median, 1)} | ${f(x.stageMs.p90, 1)} | ${f(x.stageMs.max, 1)} | ${f(x.cliApplyMs.median, 0)} | ${pts} | ${x.load?.maxLatencyUs ?? '?'} (p99 ${x.load?.p99LatencyUs ?? '?'}); no update: ${x.controls?.noUpdate?.maxLatencyUs ?? '?'}; status calls only: ${x.controls?.statusCallsOnly?.maxLatencyUs ?? '?'} | ${x.load ? (x.load.errors ?? '?') + ' err / ' + (x.load.wrong ?? '?') + ' wrong of ' + (x.load.requests ?? '?') : '?'} |`);
    }
    if (p.workerpoolAsShipped && p.workerpoolAsShipped.outcome !== 'applied') L.push(`\nworkerpool as shipped (main in sigwait): \`${p.workerpoolAsShipped.outcome}\` — ${(p.workerpoolAsShipped.reasons || []).join('; ')}; measured on the bench variant instead`);
  }
  return L.join('\n');
}

function main() {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  const results = { machine: machine(), settings: { runs: RUNS, compileRuns: COMPILE_RUNS, pairs: PAIRS, requests: REQUESTS, callgrindRequests: CG_REQUESTS, connections: CONNS }, errors: {} };
  log(`work dir ${WORK}; ${results.machine.nproc} CPUs, ${results.machine.cpuModel}`);
  buildLoadgen();
  let codebaseReady = false;
  const step = (name, fn) => {
    if (!ONLY.has(name)) return;
    try {
      results[name] = fn();
    } catch (e) {
      log(`${name}: FAILED ${e.message}`);
      results.errors[name] = String(e.message).slice(0, 2000);
    }
  };
  step('cpu', () => {
    const r = benchCpu();
    codebaseReady = !r.skipped;
    return r;
  });
  if (!ONLY.has('cpu') && ONLY.has('compile')) codebaseReady = codebaseStatus().ready;
  step('server', benchServer);
  step('pause', benchPause);
  step('compile', () => benchCompile(codebaseReady));
  results.machine.loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  results.finished = new Date().toISOString();
  // A partial run (--only) keeps the other sections of the previous results, each with its date.
  keepPreviousSections(results, OUT, ['cpu', 'server', 'pause', 'compile'], ONLY);
  results.table = table(results);
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nMachine: ${results.machine.nproc} × ${results.machine.cpuModel}, ${results.machine.date}, load avg ${results.machine.loadavgAtStart.join(' ')} → ${results.machine.loadavgAtEnd.join(' ')}\n`);
  console.log(results.table);
  if (Object.keys(results.errors).length) console.log(`\nErrors: ${JSON.stringify(results.errors, null, 1)}`);
  console.log(`\nwritten ${path.relative(process.cwd(), OUT) || OUT}`);
}

main();
