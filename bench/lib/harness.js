// Shared helpers for the benchmark drivers (bench/*/run.js): statistics, subprocesses, a private
// work directory whose started processes are stopped and whose files are removed on exit, and the
// merge that lets a partial run (--only) keep the other sections of the previous results file.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cp = require('node:child_process');

// ---------------------------------------------------------------- statistics
const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const log = (s) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
/** Median of the finite values (null, undefined, NaN and ±Infinity are left out); null if none. */
const median = (xs) => {
  const s = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** The p-th percentile (nearest rank); null for no values. */
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? x : Math.round(x * 10 ** d) / 10 ** d);
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : round(a / b, 3));
/** Rotates the order of variants per round so none always runs first. */
const orderFor = (r, n) => Array.from({ length: n }, (_, i) => (i + r) % n);

// ---------------------------------------------------------------- subprocesses and files
/** spawnSync with utf8 output and a timeout (o.timeoutMs, default 15 min); throws on a non-zero
 *  exit unless o.check === false. */
function sh(cmd, args, o = {}) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: o.timeoutMs ?? 15 * 60_000, ...o });
  if (o.check !== false && r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${(r.stdout || '').slice(-2000)}\n${(r.stderr || '').slice(-2000)}`);
  }
  return r;
}
/** Runs cmd under bash `time`; returns {wall, user, sys} in seconds. */
function timed(cmdline, o = {}) {
  const script = `TIMEFORMAT='@@TIME %3R %3U %3S'; time ( ${cmdline} >${o.stdoutFile || '/dev/null'} 2>${o.stderrFile || '/dev/null'} )`;
  const r = sh('bash', ['-c', script], { cwd: o.cwd, env: o.env ?? process.env, timeoutMs: o.timeoutMs, check: false });
  const m = /@@TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr || '');
  if (r.status !== 0 || !m) throw new Error(`timed run failed (${r.status}): ${cmdline}\n${r.stderr}`);
  return { wall: Number(m[1]), user: Number(m[2]), sys: Number(m[3]), cpu: Number(m[2]) + Number(m[3]) };
}
/** Single-quotes a string for sh. */
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

function copyDir(src, dst) {
  fs.rmSync(dst, { recursive: true, force: true });
  fs.cpSync(src, dst, { recursive: true });
}
/** Total instructions (Ir) recorded in a callgrind output file. */
function callgrindIr(outFile) {
  const text = fs.readFileSync(outFile, 'utf8');
  const m = /^(?:totals|summary):\s*(\d+)/m.exec(text);
  if (!m) throw new Error(`no totals in ${outFile}`);
  return Number(m[1]);
}

// ---------------------------------------------------------------- workspace and processes
function isAlive(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(st);
  } catch {
    return false;
  }
}
/** A private work directory (os.tmpdir()/<prefix>XXXXXX) with a `run` subdirectory (mode 0700,
 *  for DSU_RUN_DIR) and a set of started pids. On exit (and SIGINT/SIGTERM, which exit 130) every
 *  pid still in `started` is stopped and, unless keep, the work directory is removed. */
function createWorkspace({ prefix = 'dsu-bench-', keep = false } = {}) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const runDir = path.join(work, 'run');
  fs.mkdirSync(runDir, { mode: 0o700 });
  fs.chmodSync(runDir, 0o700);
  const started = new Set(); // pids we started and have not seen exit
  /** SIGTERM, up to waitMs for the process to go, then SIGKILL; forgets the pid. */
  function stopPid(pid, waitMs = 10000) {
    if (!isAlive(pid)) return started.delete(pid);
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    const t0 = Date.now();
    while (isAlive(pid) && Date.now() - t0 < waitMs) sleepMs(10);
    if (isAlive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } sleepMs(50); }
    started.delete(pid);
  }
  function cleanup() {
    for (const pid of [...started]) stopPid(pid, 3000);
    if (!keep) fs.rmSync(work, { recursive: true, force: true });
  }
  process.on('exit', cleanup);
  for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));
  return { work, runDir, started, isAlive, stopPid };
}

// ---------------------------------------------------------------- results
/** A partial run (--only) keeps the other sections of the previous results, each with its date.
 *  Sets results.measuredAt[k] = results.finished for each section k in `only`; for each other
 *  section present in the previous outFile, copies it and its measuredAt (or, for files written
 *  before measuredAt existed, their finished / machine.date). An unreadable previous file: this
 *  run's sections only. `only` is a Set of section names. */
function keepPreviousSections(results, outFile, sections, only) {
  results.measuredAt = Object.fromEntries(sections.filter((k) => only.has(k)).map((k) => [k, results.finished]));
  if (sections.some((k) => !only.has(k)) && fs.existsSync(outFile)) {
    try {
      const prev = JSON.parse(fs.readFileSync(outFile, 'utf8'));
      for (const k of sections) {
        if (only.has(k) || prev[k] === undefined) continue;
        results[k] = prev[k];
        results.measuredAt[k] = prev.measuredAt?.[k] ?? prev.finished ?? prev.machine?.date;
      }
    } catch {
      // an unreadable previous file: this run's sections only
    }
  }
  return results;
}

/** `--name value` options and `--flag` switches of this process's command line. */
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const flag = (name) => argv.includes(name);

/** What a result file says about the machine and the tools (ratios are only comparable within one). */
function machineInfo({ repo, clang, pinned }) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (/^model name\s*:\s*(.*)$/m.exec(cpuinfo) || [])[1] || 'unknown';
  const ver = (cmd, args) => {
    try {
      return sh(cmd, args).stdout.split('\n')[0].trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    date: new Date().toISOString(),
    nproc: os.cpus().length,
    cpuModel: model,
    kernel: os.release(),
    loadavgAtStart: os.loadavg().map((x) => round(x, 2)),
    clang: ver(clang, ['--version']),
    cc: ver('cc', ['--version']),
    node: process.version,
    valgrind: ver('valgrind', ['--version']),
    glibc: ver('ldd', ['--version']),
    pinned,
    gitHead: ver('git', ['-C', repo, 'rev-parse', '--short', 'HEAD']),
  };
}

/**
 * A starter for the fixture servers of a workspace (createWorkspace's): `startServer(bin, args,
 * {env, cwd, cpu, valgrind, startMs})` spawns the server (pinned to `cpu` with taskset when `pin`,
 * under `valgrind` when given), its output to a file, and waits for its `listening <port>` line;
 * the pid is stopped with the workspace. Returns {pid, port, outFile}.
 */
function serverStarter({ work, started, stopPid, pin = false, defaultStartMs = 20000 }) {
  return function startServer(bin, args, o = {}) {
    const outFile = path.join(work, `server-${Date.now()}-${Math.random().toString(36).slice(2)}.out`);
    const fd = fs.openSync(outFile, 'w');
    const pre = [...(o.cpu != null && pin ? ['taskset', '-c', String(o.cpu)] : []), ...(o.valgrind || [])];
    const full = [...pre, bin, ...args];
    const child = cp.spawn(full[0], full.slice(1), { cwd: o.cwd || path.dirname(bin), env: o.env || process.env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    started.add(child.pid);
    const t0 = Date.now();
    for (;;) {
      const text = fs.readFileSync(outFile, 'utf8');
      const m = /listening (\d+)/.exec(text);
      if (m) return { pid: child.pid, port: Number(m[1]), outFile };
      if (!isAlive(child.pid) || Date.now() - t0 > (o.startMs ?? defaultStartMs)) {
        stopPid(child.pid);
        throw new Error(`${bin} did not start: ${text.slice(-500)}`);
      }
      sleepMs(10);
    }
  };
}

/**
 * The loopback load generator (bench/live-code/loadgen.c, built at `bin`) for a workspace:
 * `run(port, args, {cpu})` runs it to the end and returns its JSON result; `startLight(port,
 * mode, name)` starts light background load (2 connections, 1 ms think time, at most 15 minutes)
 * whose `stop()` returns the JSON result.
 */
function loadgenTools({ work, started, stopPid, pin = false, bin }) {
  function run(port, args, o = {}) {
    const full = [...(o.cpu != null && pin ? ['taskset', '-c', String(o.cpu)] : []), bin, '-p', String(port), ...args];
    const r = sh(full[0], full.slice(1), { check: false, timeoutMs: o.timeoutMs ?? 300_000 });
    const line = (r.stdout || '').trim().split('\n').pop();
    let res;
    try { res = JSON.parse(line); } catch { throw new Error(`loadgen output: ${r.stdout} ${r.stderr}`); }
    if (r.status !== 0) throw new Error(`loadgen failed: ${line} ${r.stderr}`);
    return res;
  }
  function startLight(port, mode, name) {
    const stopFile = path.join(work, `stop-${name}`);
    const out = path.join(work, `loadgen-${name}.out`);
    fs.rmSync(stopFile, { force: true });
    const fd = fs.openSync(out, 'w');
    const lg = cp.spawn(bin, ['-p', String(port), '-c', '2', '-n', '0', '-s', '1000', '-m', mode, '-f', stopFile, '-d', '900000'], { stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    started.add(lg.pid);
    return {
      stop() {
        fs.writeFileSync(stopFile, '');
        const t0 = Date.now();
        while (!/\}\s*$/.test(fs.readFileSync(out, 'utf8')) && Date.now() - t0 < 10000) sleepMs(20);
        stopPid(lg.pid, 2000);
        try { return JSON.parse(fs.readFileSync(out, 'utf8').trim().split('\n').pop()); } catch { return { raw: fs.readFileSync(out, 'utf8').slice(-500) }; }
      },
    };
  }
  return { run, startLight };
}

module.exports = {
  serverStarter,
  loadgenTools,
  machineInfo,
  opt,
  flag,
  sleepMs,
  log,
  median,
  pct,
  round,
  ratio,
  orderFor,
  sh,
  timed,
  q,
  copyDir,
  callgrindIr,
  isAlive,
  createWorkspace,
  keepPreviousSections,
};
