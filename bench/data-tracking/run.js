#!/usr/bin/env node
// Steady-state cost of live data updates on a poll server: allocation tracking (typed malloc/free
// through libdsu's registry) and the reserved room (slop + version tag in every updatable struct).
// One server (bench/data-tracking/server: per-connection state malloc'd per connection, a heap
// key/value store whose SET allocates a new entry and frees the old one), four builds side by
// side in one run, interleaved rounds with rotating order:
//   clang  native clang-19 -O2          gcc   native cc -O2 (gcc 12), for reference
//   live   dsu-cc, data updates off     (DSU_NO_DATA=1, what `dsu build --no-data` sets: no
//          room, allocations not tracked, malloc/free left alone)
//   data   dsu-cc default               (room + version tag, tracked allocations)
// Loads: bench/live-code/loadgen.c (8 persistent connections, PING / SET / GET) and churn.c (new
// connection per SET+GET pair). Usage: bench/data-tracking/run [--runs N] [--requests N]
//   [--churn N] [--preload N] [--only throughput,callgrind,rss] [--rss-sizes N,N] [--cg-requests N]
//   [--cg-churn N] [--runtime-dir DIR] [--no-pin] [--keep] [--out FILE]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const SERVER_SRC = path.join(__dirname, 'server');
const DSU_CC = path.join(REPO, 'libs', 'instrument', 'bin', 'dsu-cc.js');
const CLANG = '/usr/bin/clang-19';

const { machineInfo, opt, flag, sleepMs, log, median, round, ratio, orderFor, sh, copyDir, callgrindIr, createWorkspace, keepPreviousSections, serverStarter } = require('../lib/harness');

// ---------------------------------------------------------------- options
const ONLY = new Set((opt('--only', 'throughput,callgrind,rss') || '').split(',').filter(Boolean));
const RUNS = Math.max(1, Number(opt('--runs', process.env.BENCH_RUNS || 7)));
const REQUESTS = Math.max(1000, Number(opt('--requests', 300000)));
const CHURN = Math.max(100, Number(opt('--churn', 50000)));
const CHURN_REQS = Math.max(1, Number(opt('--churn-reqs', 2)));
const PRELOAD = Math.max(0, Number(opt('--preload', 100000)));
const CONNS = Math.max(1, Math.min(64, Number(opt('--conns', 8))));
const CG_REQUESTS = Math.max(1000, Number(opt('--cg-requests', 20000)));
const CG_CHURN = Math.max(100, Number(opt('--cg-churn', 5000)));
const RSS_SIZES = opt('--rss-sizes', '0,10000,100000,1000000').split(',').filter(Boolean).map(Number);
const PIN = !flag('--no-pin') && os.cpus().length >= 2 && fs.existsSync('/usr/bin/taskset');
const OUT = path.resolve(opt('--out', path.join(REPO, 'bench', 'results', 'data-tracking.json')));
const LOAD_TIMEOUT_MS = 300_000;
// --runtime-dir DIR: link the dsu builds against another libdsu (a libs/runtime copy with build/),
// e.g. to compare registry implementations; default: the workspace's libs/runtime.
const RUNTIME_DIR = opt('--runtime-dir', null) ? path.resolve(opt('--runtime-dir')) : null;

// ---------------------------------------------------------------- helpers
const { work: WORK, runDir: RUN_DIR, started, isAlive, stopPid } = createWorkspace({ prefix: 'dsu-bench-dt-', keep: flag('--keep') });

// ---------------------------------------------------------------- variants
const VARIANTS = [
  { key: 'clang', label: 'native clang-19 -O2', cc: CLANG, dsu: false },
  { key: 'gcc', label: 'native cc -O2 (gcc 12)', cc: 'cc', dsu: false },
  { key: 'live', label: 'dsu-cc, data updates off (live-code build)', cc: DSU_CC, dsu: true },
  { key: 'data', label: 'dsu-cc default (room + tracking)', cc: DSU_CC, dsu: true },
];
const V = Object.fromEntries(VARIANTS.map((v) => [v.key, v]));
const runEnv = () => ({ ...process.env, DSU_RUN_DIR: RUN_DIR });

/** The server Makefile's own CFLAGS with `-g` as `-gdwarf-4` (valgrind 3.19 cannot read
 *  clang-19's DWARF 5); debug info does not change the generated code. */
function serverCflags(dir) {
  const mk = fs.readFileSync(path.join(dir, 'Makefile'), 'utf8');
  const m = /^CFLAGS\s*\??=\s*(.*)$/m.exec(mk);
  const toks = (m ? m[1] : '-O2 -g').trim().split(/\s+/);
  const out = toks.map((t) => (t === '-g' ? '-gdwarf-4' : t));
  if (!out.includes('-gdwarf-4')) out.push('-gdwarf-4');
  return out.join(' ');
}
function build(v, extraEnv = {}) {
  const d = path.join(WORK, `srv-${v.key}`);
  copyDir(SERVER_SRC, d);
  sh('make', ['clean'], { cwd: d, check: false });
  const cflags = serverCflags(d);
  const env = { ...runEnv(), ...(v.dsu ? { DSU_SOURCE_ROOT: d, DSU_UPDATE_POINTS: 'serve:loop', ...(RUNTIME_DIR ? { DSU_RUNTIME_DIR: RUNTIME_DIR } : {}), ...extraEnv } : {}) };
  sh('make', ['-j2', `CC=${v.cc}`, `CFLAGS=${cflags}`], { cwd: d, env });
  const bin = path.join(d, 'dtserver');
  if (!fs.existsSync(bin)) throw new Error(`no ${bin}`);
  return { dir: d, bin, cflags };
}
/** Struct types of a dsu build's program model: key -> {size, capacity, updatable, reason}. */
function modelTypes(dir) {
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'dtserver.dsu.json'), 'utf8'));
  const out = {};
  for (const [k, t] of Object.entries(m.types || {})) {
    if (t.kind !== 'struct') continue;
    out[k] = { size: t.size, capacity: t.capacity, updatable: !!t.updatable, ...(t.notUpdatableReason ? { reason: t.notUpdatableReason } : {}) };
  }
  return out;
}
/** Tracked allocation sites (rewritten to dsu_tmalloc & co.) in the instrumented units. */
function trackedSites(dir) {
  let n = 0;
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.inst.i'))) {
    n += (fs.readFileSync(path.join(dir, f), 'utf8').match(/__dsu_cc_t(?:malloc|calloc|realloc)\(0x/g) || []).length;
  }
  return n;
}

// ---------------------------------------------------------------- processes
const startServerIn = serverStarter({ work: WORK, started, stopPid, pin: PIN, defaultStartMs: 30000 });
const startServer = (bin, args, o = {}) => startServerIn(bin, args, { ...o, env: runEnv() });
function client(bin, port, args, o = {}) {
  const pre = o.cpu != null && PIN ? ['taskset', '-c', String(o.cpu)] : [];
  const full = [...pre, bin, '-p', String(port), ...args];
  const r = sh(full[0], full.slice(1), { check: false, timeoutMs: o.timeoutMs ?? LOAD_TIMEOUT_MS });
  const line = (r.stdout || '').trim().split('\n').pop();
  let res;
  try { res = JSON.parse(line); } catch { throw new Error(`${path.basename(bin)} output: ${r.stdout} ${r.stderr} (${r.status ?? r.signal})`); }
  if (r.status !== 0) throw new Error(`${path.basename(bin)} failed: ${line} ${r.stderr}`);
  return res;
}
/** One request on a fresh connection (bash /dev/tcp), bounded by a timeout. */
function request(port, line) {
  const r = sh('timeout', ['5', 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}; printf '%s\\n' "$1" >&3; head -n 1 <&3`, 'req', line], { check: false, timeoutMs: 10000 });
  if (r.status !== 0) throw new Error(`request ${line} failed: ${r.stderr}`);
  return r.stdout.trim();
}
function info(port) {
  const out = {};
  for (const kv of request(port, 'INFO').split(/\s+/)) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}
/** VmHWM / VmRSS / VmData of a process, in KiB. */
function memOf(pid) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => { const m = new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(st); return m ? Number(m[1]) : null; };
  const threads = /^Threads:\s*(\d+)/m.exec(st);
  return { vmHWMKiB: kb('VmHWM'), vmRSSKiB: kb('VmRSS'), rssAnonKiB: kb('RssAnon'), threads: threads ? Number(threads[1]) : null };
}

/** CPU time the kernel charged to all threads of a process (schedstat: ns on CPU, ns runnable
 *  but waiting for a CPU). Much less sensitive to other load on the machine than wall time. */
function schedOf(pid) {
  let run = 0, wait = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const [a, b] = fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
      run += a;
      wait += b;
    } catch {
      // thread gone
    }
  }
  let minflt = null;
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    minflt = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[7]); // field 10: minor faults
  } catch {
    // gone
  }
  return { run, wait, minflt };
}

// ---------------------------------------------------------------- machine
function machine() {
  return {
    ...machineInfo({ repo: REPO, clang: CLANG, pinned: PIN ? 'server on CPU 1, clients on CPU 0 (taskset)' : 'no' }),
    // The work tree may carry uncommitted runtime / dsu-cc changes: what was linked is recorded.
    uncommitted: sh('git', ['-C', REPO, 'status', '--short', '--', 'libs/runtime', 'libs/instrument', 'libs/c-frontend'], { check: false }).stdout.trim().split('\n').filter(Boolean),
    libdsu: libdsuInfo(),
  };
}
function libdsuInfo() {
  const f = path.join(RUNTIME_DIR || path.join(REPO, 'libs', 'runtime'), 'build', 'libdsu.a');
  try {
    const st = fs.statSync(f);
    return { path: RUNTIME_DIR ? f : 'libs/runtime/build/libdsu.a', mtime: st.mtime.toISOString(), sha256: require('node:crypto').createHash('sha256').update(fs.readFileSync(f)).digest('hex').slice(0, 16) };
  } catch (e) {
    return { error: String(e.message) };
  }
}

// ---------------------------------------------------------------- clients
const LOADGEN = path.join(WORK, 'loadgen');
const CHURNGEN = path.join(WORK, 'churn');
function buildClients() {
  sh('cc', ['-O2', '-Wall', '-o', LOADGEN, path.join(REPO, 'bench', 'live-code', 'loadgen.c')]);
  sh('cc', ['-O2', '-Wall', '-o', CHURNGEN, path.join(__dirname, 'churn.c')]);
}
const steadyArgs = (n, conns = CONNS) => ['-c', String(conns), '-n', String(n), '-m', 'ps', '-d', String(LOAD_TIMEOUT_MS - 10_000)];
const churnArgs = (n, par = CONNS) => ['-c', String(par), '-n', String(n), '-r', String(CHURN_REQS), '-d', String(LOAD_TIMEOUT_MS - 10_000)];

// ---------------------------------------------------------------- builds
function buildAll() {
  const builds = {};
  for (const v of [V.clang, V.gcc, V.data]) {
    log(`building dtserver: ${v.label}`);
    builds[v.key] = build(v, v.key === 'data' ? { DSU_KEEP_INSTRUMENTED: '1' } : {});
  }
  // The live-code build: data updates off (DSU_NO_DATA is what `dsu build --no-data` sets): no
  // room, no version tag, no type table, allocation sites and free() stay plain libc calls.
  const dataTypes = modelTypes(builds.data.dir);
  log(`building dtserver: ${V.live.label} (DSU_NO_DATA=1)`);
  builds.live = build(V.live, { DSU_NO_DATA: '1', DSU_KEEP_INSTRUMENTED: '1' });
  const liveTypes = modelTypes(builds.live.dir);
  const bad = Object.entries(liveTypes).filter(([, t]) => t.updatable || t.capacity !== t.size);
  if (bad.length) throw new Error(`live-code build still has room: ${JSON.stringify(bad)}`);
  const sites = { data: trackedSites(builds.data.dir), live: trackedSites(builds.live.dir) };
  const linked = libdsuInfo(); // after the dsu builds: the library they linked (static)
  if (sites.live !== 0 || sites.data === 0) throw new Error(`tracked allocation sites: ${JSON.stringify(sites)}`);
  return {
    builds,
    describe: {
      cflags: builds.clang.cflags,
      liveDsuNoData: true,
      typesData: dataTypes,
      typesLive: liveTypes,
      trackedAllocationSites: sites,
      dsuUpdatePoints: 'serve:loop',
      libdsuLinked: linked,
      notes: {
        clang: 'make CC=clang-19, the Makefile CFLAGS (-O2 -g -Wall, -g as -gdwarf-4)',
        gcc: 'make CC=cc (gcc 12), same CFLAGS',
        live: 'make CC=dsu-cc with DSU_UPDATE_POINTS=serve:loop and DSU_NO_DATA=1 (= dsu build --no-data): code instrumented as usual, no room or version tag, malloc/free left as libc calls',
        data: 'make CC=dsu-cc with DSU_UPDATE_POINTS=serve:loop (dsu-cc defaults: room + version tag, tracked malloc/free)',
      },
    },
  };
}

// ---------------------------------------------------------------- 1. throughput, latency, RSS
function benchThroughput(builds) {
  const samples = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const i of orderFor(r, VARIANTS.length)) {
      const v = VARIANTS[i];
      const s = startServer(builds[v.key].bin, ['0', String(PRELOAD)], { cpu: 1 });
      try {
        const memStart = memOf(s.pid);
        client(LOADGEN, s.port, steadyArgs(5000), { cpu: 0 }); // warm-up
        const c0 = schedOf(s.pid);
        const steady = client(LOADGEN, s.port, steadyArgs(REQUESTS), { cpu: 0 });
        const c1 = schedOf(s.pid);
        const churn = client(CHURNGEN, s.port, churnArgs(CHURN), { cpu: 0 });
        const c2 = schedOf(s.pid);
        steady.cpuNsPerRequest = (c1.run - c0.run) / steady.requests;
        steady.waitShare = (c1.wait - c0.wait) / ((c1.run - c0.run) + (c1.wait - c0.wait));
        steady.minfltPerRequest = (c1.minflt - c0.minflt) / steady.requests;
        churn.cpuNsPerConnection = (c2.run - c1.run) / churn.connections;
        churn.minfltPerConnection = (c2.minflt - c1.minflt) / churn.connections;
        churn.waitShare = (c2.wait - c1.wait) / ((c2.run - c1.run) + (c2.wait - c1.wait));
        const mem = memOf(s.pid);
        const inf = info(s.port);
        samples[v.key].push({ steady, churn, memStart, mem, info: inf });
      } finally {
        stopPid(s.pid);
      }
    }
    const last = (k) => samples[k][samples[k].length - 1];
    log(`throughput: round ${r + 1}/${RUNS}: ${VARIANTS.map((v) => `${v.key} ${round(last(v.key).steady.rps / 1000, 1)}k req/s, ${round(last(v.key).churn.cps / 1000, 2)}k conn/s, RSS ${round(last(v.key).mem.vmRSSKiB / 1024, 1)} MiB`).join('; ')}`);
  }
  const res = {
    server: 'bench/data-tracking/server (dtserver)',
    preloadEntries: PRELOAD,
    steady: { client: 'bench/live-code/loadgen.c -m ps', connections: CONNS, requests: REQUESTS, mix: 'PING / SET k v / GET k (every SET replaces an entry: malloc + free)' },
    churn: { client: 'bench/data-tracking/churn.c', parallel: CONNS, connections: CHURN, requestsPerConnection: CHURN_REQS, mix: 'connect, SET k v, GET k, close (RST); per connection: accept + malloc/free of struct conn, one entry malloc + free' },
    runs: RUNS,
    variants: {},
  };
  const med = (k, f) => median(samples[k].map(f));
  for (const v of VARIANTS) {
    const S = samples[v.key];
    res.variants[v.key] = {
      label: v.label,
      steadyRpsMedian: round(med(v.key, (s) => s.steady.rps), 0),
      steadyWallMedianS: round(med(v.key, (s) => s.steady.seconds), 4),
      steadyCpuNsPerRequestMedian: round(med(v.key, (s) => s.steady.cpuNsPerRequest), 0),
      steadyWaitShareMedian: round(med(v.key, (s) => s.steady.waitShare), 3),
      churnCpuNsPerConnectionMedian: round(med(v.key, (s) => s.churn.cpuNsPerConnection), 0),
      churnWaitShareMedian: round(med(v.key, (s) => s.churn.waitShare), 3),
      steadyMinorFaultsPerRequestMedian: round(med(v.key, (s) => s.steady.minfltPerRequest), 4),
      churnMinorFaultsPerConnectionMedian: round(med(v.key, (s) => s.churn.minfltPerConnection), 4),
      steadyP50UsMedian: med(v.key, (s) => s.steady.p50LatencyUs),
      steadyP99UsMedian: med(v.key, (s) => s.steady.p99LatencyUs),
      churnCpsMedian: round(med(v.key, (s) => s.churn.cps), 0),
      churnRpsMedian: round(med(v.key, (s) => s.churn.rps), 0),
      churnWallMedianS: round(med(v.key, (s) => s.churn.seconds), 4),
      churnP50UsMedian: med(v.key, (s) => s.churn.p50LatencyUs),
      churnP99UsMedian: med(v.key, (s) => s.churn.p99LatencyUs),
      churnConnP99UsMedian: med(v.key, (s) => s.churn.connP99Us),
      rssAfterPreloadKiBMedian: med(v.key, (s) => s.memStart.vmRSSKiB),
      vmRSSKiBMedian: med(v.key, (s) => s.mem.vmRSSKiB),
      vmHWMKiBMedian: med(v.key, (s) => s.mem.vmHWMKiB),
      threadsAfterLoad: S[0]?.mem.threads,
      sizes: { conn: S[0]?.info.conn_size, kvEntry: S[0]?.info.entry_size },
      entriesAfterLoad: S[0]?.info.entries,
      errors: S.reduce((a, s) => a + s.steady.errors + s.steady.wrong + s.churn.errors + s.churn.wrong, 0),
      samples: S.map((s) => ({
        steadyRps: round(s.steady.rps, 0), steadyP99Us: s.steady.p99LatencyUs, steadyS: round(s.steady.seconds, 4),
        steadyCpuNsPerReq: round(s.steady.cpuNsPerRequest, 0), steadyWaitShare: round(s.steady.waitShare, 3),
        churnCps: round(s.churn.cps, 0), churnP99Us: s.churn.p99LatencyUs, churnS: round(s.churn.seconds, 4),
        churnCpuNsPerConn: round(s.churn.cpuNsPerConnection, 0), churnWaitShare: round(s.churn.waitShare, 3),
        rssStartKiB: s.memStart.vmRSSKiB, rssKiB: s.mem.vmRSSKiB, hwmKiB: s.mem.vmHWMKiB,
        accepted: s.info.accepted, sets: s.info.sets,
      })),
    };
  }
  const X = res.variants;
  const perRound = (a, b, f) => round(median(samples[a].map((s, i) => f(s) / f(samples[b][i]))), 3);
  res.ratios = {
    steadyRps_data_vs_live: ratio(X.data.steadyRpsMedian, X.live.steadyRpsMedian),
    steadyRps_live_vs_clang: ratio(X.live.steadyRpsMedian, X.clang.steadyRpsMedian),
    steadyRps_data_vs_clang: ratio(X.data.steadyRpsMedian, X.clang.steadyRpsMedian),
    steadyCpuPerRequest_data_vs_live: ratio(X.data.steadyCpuNsPerRequestMedian, X.live.steadyCpuNsPerRequestMedian),
    steadyCpuPerRequest_live_vs_clang: ratio(X.live.steadyCpuNsPerRequestMedian, X.clang.steadyCpuNsPerRequestMedian),
    steadyCpuPerRequest_data_vs_clang: ratio(X.data.steadyCpuNsPerRequestMedian, X.clang.steadyCpuNsPerRequestMedian),
    churnCpuPerConnection_data_vs_live: ratio(X.data.churnCpuNsPerConnectionMedian, X.live.churnCpuNsPerConnectionMedian),
    churnCpuPerConnection_live_vs_clang: ratio(X.live.churnCpuNsPerConnectionMedian, X.clang.churnCpuNsPerConnectionMedian),
    churnCpuPerConnection_data_vs_clang: ratio(X.data.churnCpuNsPerConnectionMedian, X.clang.churnCpuNsPerConnectionMedian),
    churnCps_data_vs_live: ratio(X.data.churnCpsMedian, X.live.churnCpsMedian),
    churnCps_live_vs_clang: ratio(X.live.churnCpsMedian, X.clang.churnCpsMedian),
    churnCps_data_vs_clang: ratio(X.data.churnCpsMedian, X.clang.churnCpsMedian),
    rss_data_vs_clang: ratio(X.data.vmRSSKiBMedian, X.clang.vmRSSKiBMedian),
    rss_live_vs_clang: ratio(X.live.vmRSSKiBMedian, X.clang.vmRSSKiBMedian),
    rss_data_vs_live: ratio(X.data.vmRSSKiBMedian, X.live.vmRSSKiBMedian),
    hwm_data_vs_clang: ratio(X.data.vmHWMKiBMedian, X.clang.vmHWMKiBMedian),
    hwm_live_vs_clang: ratio(X.live.vmHWMKiBMedian, X.clang.vmHWMKiBMedian),
    hwm_data_vs_live: ratio(X.data.vmHWMKiBMedian, X.live.vmHWMKiBMedian),
    perRoundMedian_steadyRps_data_vs_live: perRound('data', 'live', (s) => s.steady.rps),
    perRoundMedian_churnCps_data_vs_live: perRound('data', 'live', (s) => s.churn.cps),
    perRoundMedian_steadyRps_live_vs_clang: perRound('live', 'clang', (s) => s.steady.rps),
    perRoundMedian_steadyCpu_data_vs_live: perRound('data', 'live', (s) => s.steady.cpuNsPerRequest),
    perRoundMedian_churnCpu_data_vs_live: perRound('data', 'live', (s) => s.churn.cpuNsPerConnection),
  };
  return res;
}

// ---------------------------------------------------------------- 2. instructions (callgrind)
/** Self Ir per function (callgrind_annotate), for the difference between two runs. */
function perFunction(outFile) {
  const r = sh('callgrind_annotate', ['--threshold=100', '--auto=no', outFile], { check: false, timeoutMs: 120_000 });
  const out = {};
  for (const line of (r.stdout || '').split('\n')) {
    const m = /^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*(?:\[.*\])?$/.exec(line);
    if (!m || !m[2].includes(':')) continue;
    const fn = m[2].replace(/^.*?:/, '').replace(/'2$/, '');
    out[fn] = (out[fn] || 0) + Number(m[1].replace(/,/g, ''));
  }
  return out;
}
function benchCallgrind(builds) {
  const CG_VARIANTS = [V.clang, V.gcc, V.live, V.data];
  const base = { steady: 2000, churn: 500 };
  const extra = { steady: CG_REQUESTS, churn: CG_CHURN };
  const res = {
    method: `server under callgrind (user-space instructions of the server process), one client connection at a time; per request = (Ir after ${base.steady}+${CG_REQUESTS} requests - Ir after ${base.steady}) / ${CG_REQUESTS} (loadgen -c 1, PING/SET/GET); per churned connection = (Ir after ${base.churn}+${CG_CHURN} connections - Ir after ${base.churn}) / ${CG_CHURN} (churn -c 1, ${CHURN_REQS} requests each)`,
    preloadEntries: PRELOAD,
    variants: {},
  };
  const fnDiff = {};
  for (const v of CG_VARIANTS) {
    const out = {};
    for (const kind of ['steady', 'churn']) {
      const counts = {};
      const fns = {};
      for (const n of [base[kind], base[kind] + extra[kind]]) {
        const cg = path.join(WORK, `cg-${v.key}-${kind}-${n}.out`);
        log(`callgrind: ${v.key} ${kind} (${n} ${kind === 'steady' ? 'requests' : 'connections'})`);
        const s = startServer(builds[v.key].bin, ['0', String(PRELOAD)], { valgrind: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${cg}`], startMs: 240_000 });
        try {
          if (kind === 'steady') client(LOADGEN, s.port, ['-c', '1', '-n', String(n), '-m', 'ps', '-d', '600000'], { timeoutMs: 700_000 });
          else client(CHURNGEN, s.port, ['-c', '1', '-n', String(n), '-r', String(CHURN_REQS), '-d', '600000'], { timeoutMs: 700_000 });
        } finally {
          stopPid(s.pid, 120_000);
        }
        counts[n] = callgrindIr(cg);
        if (v.key === 'live' || v.key === 'data' || v.key === 'clang') fns[n] = perFunction(cg);
      }
      const hi = base[kind] + extra[kind];
      out[kind] = { per: round((counts[hi] - counts[base[kind]]) / extra[kind], 1), totalIr: counts[hi] };
      if (fns[hi]) {
        const d = {};
        for (const f of new Set([...Object.keys(fns[hi]), ...Object.keys(fns[base[kind]])])) {
          const x = ((fns[hi][f] || 0) - (fns[base[kind]][f] || 0)) / extra[kind];
          if (Math.abs(x) >= 1) d[f] = round(x, 1);
        }
        (fnDiff[v.key] ||= {})[kind] = d;
      }
    }
    res.variants[v.key] = { label: v.label, irPerRequest: out.steady.per, irPerChurnedConnection: out.churn.per, totalIrSteady: out.steady.totalIr, totalIrChurn: out.churn.totalIr };
  }
  // Where data differs from live: per-function self Ir per request / connection, largest first.
  res.dataMinusLiveByFunction = {};
  for (const kind of ['steady', 'churn']) {
    const a = fnDiff.data?.[kind] || {}, b = fnDiff.live?.[kind] || {};
    const rows = [];
    for (const f of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = (a[f] || 0) - (b[f] || 0);
      if (Math.abs(d) >= 1) rows.push([f, round(d, 1)]);
    }
    rows.sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
    res.dataMinusLiveByFunction[kind] = Object.fromEntries(rows.slice(0, 20));
  }
  res.byFunction = fnDiff;
  const X = res.variants;
  res.ratios = {
    irPerRequest_data_vs_live: ratio(X.data.irPerRequest, X.live.irPerRequest),
    irPerRequest_live_vs_clang: ratio(X.live.irPerRequest, X.clang.irPerRequest),
    irPerRequest_data_vs_clang: ratio(X.data.irPerRequest, X.clang.irPerRequest),
    irPerChurnedConnection_data_vs_live: ratio(X.data.irPerChurnedConnection, X.live.irPerChurnedConnection),
    irPerChurnedConnection_live_vs_clang: ratio(X.live.irPerChurnedConnection, X.clang.irPerChurnedConnection),
    irPerChurnedConnection_data_vs_clang: ratio(X.data.irPerChurnedConnection, X.clang.irPerChurnedConnection),
  };
  return res;
}

// ---------------------------------------------------------------- 3. RSS by store size
function benchRss(builds) {
  const res = { method: 'server started with N preloaded entries, no load; VmRSS / VmHWM once "listening" is printed (after the preload), 3 starts each, median', sizes: RSS_SIZES, variants: {} };
  for (const v of VARIANTS) res.variants[v.key] = { label: v.label, byPreload: {} };
  for (const n of RSS_SIZES) {
    const s3 = Object.fromEntries(VARIANTS.map((v) => [v.key, []]));
    for (let r = 0; r < 3; r++) {
      for (const i of orderFor(r, VARIANTS.length)) {
        const v = VARIANTS[i];
        const s = startServer(builds[v.key].bin, ['0', String(n)], { cpu: 1, startMs: 120_000 });
        try {
          s3[v.key].push(memOf(s.pid));
        } finally {
          stopPid(s.pid);
        }
      }
    }
    for (const v of VARIANTS) res.variants[v.key].byPreload[n] = { vmRSSKiB: median(s3[v.key].map((m) => m.vmRSSKiB)), vmHWMKiB: median(s3[v.key].map((m) => m.vmHWMKiB)) };
    const g = (k, f) => res.variants[k].byPreload[n][f];
    log(`rss: preload ${n}: ${VARIANTS.map((v) => `${v.key} ${round(g(v.key, 'vmRSSKiB') / 1024, 1)} MiB`).join(', ')}`);
  }
  res.ratios = {};
  for (const n of RSS_SIZES) {
    const g = (k, f) => res.variants[k].byPreload[n][f];
    res.ratios[n] = {
      rss_data_vs_clang: ratio(g('data', 'vmRSSKiB'), g('clang', 'vmRSSKiB')),
      rss_live_vs_clang: ratio(g('live', 'vmRSSKiB'), g('clang', 'vmRSSKiB')),
      hwm_data_vs_clang: ratio(g('data', 'vmHWMKiB'), g('clang', 'vmHWMKiB')),
      extraBytesPerEntry_data_vs_live: n > 0 ? round(((g('data', 'vmRSSKiB') - g('live', 'vmRSSKiB')) * 1024) / n, 1) : null,
    };
  }
  return res;
}

// ---------------------------------------------------------------- report
function table(results) {
  const L = [];
  const f = (x, d = 3) => (x == null ? '—' : String(round(x, d)));
  const mib = (k) => (k == null ? '—' : (k / 1024).toFixed(1));
  const t = results.throughput;
  L.push('| dtserver | clang-19 -O2 | gcc -O2 | dsu live-code | dsu data | data/live | live/clang | data/clang |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  if (t) {
    const X = t.variants, R = t.ratios;
    L.push(`| sizeof struct conn / struct kv_entry (bytes) | ${X.clang.sizes.conn} / ${X.clang.sizes.kvEntry} | ${X.gcc.sizes.conn} / ${X.gcc.sizes.kvEntry} | ${X.live.sizes.conn} / ${X.live.sizes.kvEntry} | ${X.data.sizes.conn} / ${X.data.sizes.kvEntry} | | | |`);
    L.push(`| steady: ${t.steady.connections} conns, ${t.steady.requests / 1000}k req PING/SET/GET, req/s (median of ${t.runs}) | ${f(X.clang.steadyRpsMedian, 0)} | ${f(X.gcc.steadyRpsMedian, 0)} | ${f(X.live.steadyRpsMedian, 0)} | ${f(X.data.steadyRpsMedian, 0)} | ${f(R.steadyRps_data_vs_live)} | ${f(R.steadyRps_live_vs_clang)} | ${f(R.steadyRps_data_vs_clang)} |`);
    L.push(`| steady: server CPU ns per request (schedstat, median) | ${f(X.clang.steadyCpuNsPerRequestMedian, 0)} | ${f(X.gcc.steadyCpuNsPerRequestMedian, 0)} | ${f(X.live.steadyCpuNsPerRequestMedian, 0)} | ${f(X.data.steadyCpuNsPerRequestMedian, 0)} | ${f(R.steadyCpuPerRequest_data_vs_live)} | ${f(R.steadyCpuPerRequest_live_vs_clang)} | ${f(R.steadyCpuPerRequest_data_vs_clang)} |`);
    L.push(`| steady: p99 latency µs (median) | ${f(X.clang.steadyP99UsMedian, 0)} | ${f(X.gcc.steadyP99UsMedian, 0)} | ${f(X.live.steadyP99UsMedian, 0)} | ${f(X.data.steadyP99UsMedian, 0)} | ${f(ratio(X.data.steadyP99UsMedian, X.live.steadyP99UsMedian))} | | |`);
    L.push(`| churn: ${t.churn.connections / 1000}k connections × (SET, GET), ${t.churn.parallel} at a time, conn/s (median) | ${f(X.clang.churnCpsMedian, 0)} | ${f(X.gcc.churnCpsMedian, 0)} | ${f(X.live.churnCpsMedian, 0)} | ${f(X.data.churnCpsMedian, 0)} | ${f(R.churnCps_data_vs_live)} | ${f(R.churnCps_live_vs_clang)} | ${f(R.churnCps_data_vs_clang)} |`);
    L.push(`| churn: server CPU µs per connection (schedstat, median) | ${f(X.clang.churnCpuNsPerConnectionMedian / 1000, 2)} | ${f(X.gcc.churnCpuNsPerConnectionMedian / 1000, 2)} | ${f(X.live.churnCpuNsPerConnectionMedian / 1000, 2)} | ${f(X.data.churnCpuNsPerConnectionMedian / 1000, 2)} | ${f(R.churnCpuPerConnection_data_vs_live)} | ${f(R.churnCpuPerConnection_live_vs_clang)} | ${f(R.churnCpuPerConnection_data_vs_clang)} |`);
    L.push(`| churn: p99 request latency µs (median) | ${f(X.clang.churnP99UsMedian, 0)} | ${f(X.gcc.churnP99UsMedian, 0)} | ${f(X.live.churnP99UsMedian, 0)} | ${f(X.data.churnP99UsMedian, 0)} | ${f(ratio(X.data.churnP99UsMedian, X.live.churnP99UsMedian))} | | |`);
    L.push(`| VmRSS after load, MiB (${t.preloadEntries / 1000}k entries preloaded) | ${mib(X.clang.vmRSSKiBMedian)} | ${mib(X.gcc.vmRSSKiBMedian)} | ${mib(X.live.vmRSSKiBMedian)} | ${mib(X.data.vmRSSKiBMedian)} | ${f(R.rss_data_vs_live)} | ${f(R.rss_live_vs_clang)} | ${f(R.rss_data_vs_clang)} |`);
    L.push(`| VmHWM after load, MiB | ${mib(X.clang.vmHWMKiBMedian)} | ${mib(X.gcc.vmHWMKiBMedian)} | ${mib(X.live.vmHWMKiBMedian)} | ${mib(X.data.vmHWMKiBMedian)} | ${f(R.hwm_data_vs_live)} | ${f(R.hwm_live_vs_clang)} | ${f(R.hwm_data_vs_clang)} |`);
  }
  const c = results.callgrind;
  if (c) {
    const X = c.variants, R = c.ratios;
    L.push(`| instructions per request (callgrind, 1 conn, steady mix) | ${f(X.clang.irPerRequest, 0)} | ${f(X.gcc.irPerRequest, 0)} | ${f(X.live.irPerRequest, 0)} | ${f(X.data.irPerRequest, 0)} | ${f(R.irPerRequest_data_vs_live)} | ${f(R.irPerRequest_live_vs_clang)} | ${f(R.irPerRequest_data_vs_clang)} |`);
    L.push(`| instructions per churned connection (callgrind, accept … close, ${results.settings.churnRequestsPerConnection} requests) | ${f(X.clang.irPerChurnedConnection, 0)} | ${f(X.gcc.irPerChurnedConnection, 0)} | ${f(X.live.irPerChurnedConnection, 0)} | ${f(X.data.irPerChurnedConnection, 0)} | ${f(R.irPerChurnedConnection_data_vs_live)} | ${f(R.irPerChurnedConnection_live_vs_clang)} | ${f(R.irPerChurnedConnection_data_vs_clang)} |`);
  }
  const s = results.rss;
  if (s) {
    L.push('');
    L.push('| VmRSS after preload, no load (MiB; VmHWM) | clang-19 -O2 | gcc -O2 | dsu live-code | dsu data | data/clang | live/clang | data − live per entry |');
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const n of s.sizes) {
      const g = (k) => s.variants[k].byPreload[n];
      const cell = (k) => `${mib(g(k).vmRSSKiB)} (${mib(g(k).vmHWMKiB)})`;
      L.push(`| ${n.toLocaleString('en-US')} entries | ${cell('clang')} | ${cell('gcc')} | ${cell('live')} | ${cell('data')} | ${f(s.ratios[n].rss_data_vs_clang)} | ${f(s.ratios[n].rss_live_vs_clang)} | ${s.ratios[n].extraBytesPerEntry_data_vs_live == null ? '—' : `${f(s.ratios[n].extraBytesPerEntry_data_vs_live, 0)} B`} |`);
    }
  }
  return L.join('\n');
}

function main() {
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  const results = {
    machine: machine(),
    settings: { runtimeDir: RUNTIME_DIR, runs: RUNS, requests: REQUESTS, churnConnections: CHURN, churnRequestsPerConnection: CHURN_REQS, preload: PRELOAD, connections: CONNS, callgrindRequests: CG_REQUESTS, callgrindChurn: CG_CHURN, rssSizes: RSS_SIZES, only: [...ONLY] },
    variants: Object.fromEntries(VARIANTS.map((v) => [v.key, v.label])),
    errors: {},
  };
  log(`work dir ${WORK}; ${results.machine.nproc} CPUs, ${results.machine.cpuModel}`);
  buildClients();
  const { builds, describe } = buildAll();
  results.builds = describe;
  const step = (name, fn) => {
    if (!ONLY.has(name)) return;
    try {
      results[name] = fn();
    } catch (e) {
      log(`${name}: FAILED ${e.message}`);
      results.errors[name] = String(e.message).slice(0, 2000);
    }
  };
  step('throughput', () => benchThroughput(builds));
  step('callgrind', () => benchCallgrind(builds));
  step('rss', () => benchRss(builds));
  results.machine.loadavgAtEnd = os.loadavg().map((x) => round(x, 2));
  results.finished = new Date().toISOString();
  // A partial run (--only) keeps the other sections of the previous results, each with its date;
  // machine, settings and builds always describe this run.
  keepPreviousSections(results, OUT, ['throughput', 'callgrind', 'rss'], ONLY);
  results.table = table(results);
  fs.writeFileSync(OUT, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nMachine: ${results.machine.nproc} × ${results.machine.cpuModel}, ${results.machine.date}, git ${results.machine.gitHead}, load avg ${results.machine.loadavgAtStart.join(' ')} → ${results.machine.loadavgAtEnd.join(' ')}\n`);
  console.log(results.table);
  if (results.callgrind?.dataMinusLiveByFunction) {
    const d = results.callgrind.dataMinusLiveByFunction;
    console.log(`\nInstructions data − live, by function (callgrind self cost): per request ${JSON.stringify(d.steady)}; per churned connection ${JSON.stringify(d.churn)}`);
  }
  if (Object.keys(results.errors).length) console.log(`\nErrors: ${JSON.stringify(results.errors, null, 1)}`);
  console.log(`\nwritten ${path.relative(process.cwd(), OUT) || OUT}`);
}

main();
