#!/usr/bin/env node
// Eager data-update pause: the runtime's data test program (libs/runtime/tests/progs/data.c: a
// linked list of N tracked heap nodes, 3 heap containers embedding one, a global array of 4) gets
// the v2 patch (a field widened, one added: every instance transformed). Measures the COMMIT
// reply's pauseUs / transformUs and the program's RSS.
// Lazy (--transform lazy): the runtime's lazyd program (same shapes, one worker thread) gets the
// lazy v2 patch: the pause (only the 4 globals are transformed in it), then the first walk over
// every instance (each one transformed on its first touch) and later walks (tag checks only),
// timed by the program itself. Needs `make -C libs/runtime test` first.
// Options: --runs N (3), --sizes a,b,c (1000,100000,1000000), --only eager|lazy (both), --out FILE.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const cp = require('node:child_process');

const REPO = path.resolve(__dirname, '..', '..');
const RT = path.join(REPO, 'libs', 'runtime', 'build');
const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : def;
};
const RUNS = Math.max(1, Number(opt('--runs', 3)));
const SIZES = opt('--sizes', '1000,100000,1000000').split(',').map(Number);
// --only eager | lazy: run one part (the official results file wants both: the default)
const ONLY = opt('--only', 'all');
if (!['all', 'eager', 'lazy'].includes(ONLY)) throw new Error(`--only ${ONLY}: expected eager or lazy`);
const OUT = path.resolve(opt('--out', path.join(REPO, 'bench', 'results', 'data-updates.json')));
const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const prog = path.join(RT, 'tests', 'data');
const patch = path.join(RT, 'tests', 'data_v2.so');
const dsuctl = path.join(RT, 'dsuctl');
for (const f of [prog, patch, dsuctl]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: run make -C libs/runtime test first`);
const sha = require('node:crypto').createHash('sha256').update(fs.readFileSync(patch)).digest('hex');

function once(n) {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'dsu-bench-data-'));
  fs.chmodSync(run, 0o700);
  const out = path.join(run, 'out');
  const errFile = path.join(run, 'err');
  // DSU_DEBUG=1: the runtime prints the phases of the transformation (collect, prepare, commit).
  const child = cp.spawn(prog, [], { env: { ...process.env, DSU_RUN_DIR: run, DATA_N: String(n), DSU_DEBUG: '1' }, stdio: ['ignore', fs.openSync(out, 'w'), fs.openSync(errFile, 'w')] });
  try {
    for (let i = 0; i < 600 && !/^sum=/m.test(fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : ''); i++) sleepMs(50);
    const rss = Number(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
    const ctl = (...a) => JSON.parse(cp.execFileSync(dsuctl, [String(child.pid), ...a], { env: { ...process.env, DSU_RUN_DIR: run }, encoding: 'utf8' }));
    const staged = ctl('STAGE', patch, sha, 'v2');
    if (!staged.ok) throw new Error(JSON.stringify(staged));
    const r = ctl('COMMIT', '60000');
    if (r.outcome !== 'applied') throw new Error(JSON.stringify(r));
    sleepMs(50);
    const m = /data: \d+ instances: collect (\d+) us, prepare (\d+) us, commit (\d+) us(?:.*on cpu (\d+) us)?/.exec(fs.readFileSync(errFile, 'utf8'));
    // onCpu: the coordinator thread's CPU time in the transformation (the rest is other processes)
    const phasesUs = m ? { collect: Number(m[1]), prepare: Number(m[2]), commit: Number(m[3]), ...(m[4] ? { onCpu: Number(m[4]) } : {}) } : null;
    return { instances: r.instances, pauseUs: r.pauseUs, transformUs: r.transformUs, phasesUs, rssKb: rss };
  } finally {
    child.kill('SIGTERM');
    fs.rmSync(run, { recursive: true, force: true });
  }
}

const lazyProg = path.join(RT, 'tests', 'lazyd');
const lazyPatch = path.join(RT, 'tests', 'lazy_v2.so');
for (const f of [lazyProg, lazyPatch]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: run make -C libs/runtime test first`);
const lazySha = require('node:crypto').createHash('sha256').update(fs.readFileSync(lazyPatch)).digest('hex');

function lazyOnce(n) {
  const run = fs.mkdtempSync(path.join(os.tmpdir(), 'dsu-bench-lazy-'));
  fs.chmodSync(run, 0o700);
  const out = path.join(run, 'out');
  const child = cp.spawn(lazyProg, [], { env: { ...process.env, DSU_RUN_DIR: run, DATA_N: String(n), THREADS: '1' }, stdio: ['ignore', fs.openSync(out, 'w'), 'ignore'] });
  const lines = (v) => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '').split('\n').filter((l) => l.startsWith('sum=') && l.includes(` v=${v} `));
  // one full walk over every instance; returns its line's fields
  const walk = (v) => {
    const have = lines(v).length;
    process.kill(child.pid, 'SIGUSR1');
    for (let i = 0; i < 1200 && lines(v).length <= have; i++) sleepMs(25);
    const l = lines(v)[have];
    if (!l) throw new Error(`no walk result from lazyd (${v}, n=${n})`);
    const m = /^sum=(-?\d+) n=(\d+) v=\S+ x=(\d+) w=\d+ us=(\d+)$/.exec(l);
    return { sum: m[1], n: Number(m[2]), x: Number(m[3]), us: Number(m[4]) };
  };
  try {
    for (let i = 0; i < 1200 && !/^ready/m.test(fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : ''); i++) sleepMs(25);
    const ctl = (...a) => JSON.parse(cp.execFileSync(dsuctl, [String(child.pid), ...a], { env: { ...process.env, DSU_RUN_DIR: run }, encoding: 'utf8' }));
    const v1 = [walk('v1'), walk('v1'), walk('v1')];
    const staged = ctl('STAGE', lazyPatch, lazySha, 'lv2');
    if (!staged.ok) throw new Error(JSON.stringify(staged));
    const r = ctl('COMMIT', '60000');
    if (r.outcome !== 'applied') throw new Error(JSON.stringify(r));
    const first = walk('v2');
    const steady = [walk('v2'), walk('v2'), walk('v2')];
    if (first.sum !== v1[0].sum || first.x !== 7 * first.n) throw new Error(`lazy walk lost values: ${JSON.stringify({ v1: v1[0], first })}`);
    const status = ctl('STATUS');
    return {
      instances: first.n,
      eagerAtCommit: r.instances,
      pauseUs: r.pauseUs,
      transformUs: r.transformUs,
      walkV1Us: median(v1.map((w) => w.us)),
      firstTouchWalkUs: first.us,
      steadyWalkUs: median(steady.map((w) => w.us)),
      touched: status.lazyTypes?.[0]?.touched,
    };
  } finally {
    child.kill('SIGTERM');
    fs.rmSync(run, { recursive: true, force: true });
  }
}

const results = [];
for (const n of ONLY === 'lazy' ? [] : SIZES) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(once(n));
  const pause = median(runs.map((r) => r.pauseUs));
  const row = {
    liveInstances: runs[0].instances,
    pauseUsMedian: pause,
    transformUsMedian: median(runs.map((r) => r.transformUs)),
    nsPerInstance: Math.round((pause * 1000) / runs[0].instances),
    // the same on the coordinator's CPU clock: the pause less the time other processes ran instead
    nsPerInstanceOnCpu: runs.every((r) => r.phasesUs?.onCpu != null) ? Math.round((median(runs.map((r) => r.phasesUs.onCpu)) * 1000) / runs[0].instances) : null,
    rssKbBefore: median(runs.map((r) => r.rssKb)),
    runs,
  };
  results.push(row);
  process.stderr.write(`${row.liveInstances} instances: pause ${pause} us (${row.nsPerInstance} ns/instance, ${row.nsPerInstanceOnCpu} on cpu); phases of run 1: ${JSON.stringify(runs[0].phasesUs)}\n`);
}
const lazy = [];
for (const n of ONLY === 'eager' ? [] : SIZES) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(lazyOnce(n));
  const med = (k) => median(runs.map((r) => r[k]));
  const inst = runs[0].instances;
  const row = {
    liveInstances: inst,
    pauseUsMedian: med('pauseUs'),
    transformUsMedian: med('transformUs'),
    // the first walk transforms every heap instance on its first touch; later walks only check
    firstTouchNsPerInstance: Math.round(((med('firstTouchWalkUs') - med('steadyWalkUs')) * 1000) / inst),
    // v2 walk (a tag check per node, one more field read) against the v1 walk (no check)
    steadyCheckNsPerInstance: Math.round(((med('steadyWalkUs') - med('walkV1Us')) * 1000) / inst * 10) / 10,
    walkNsPerInstance: { v1: Math.round((med('walkV1Us') * 1000) / inst), firstTouch: Math.round((med('firstTouchWalkUs') * 1000) / inst), steady: Math.round((med('steadyWalkUs') * 1000) / inst) },
    runs,
  };
  lazy.push(row);
  process.stderr.write(`lazy ${inst} instances: pause ${row.pauseUsMedian} us, first touch ${row.firstTouchNsPerInstance} ns/instance, tag check ${row.steadyCheckNsPerInstance} ns/instance\n`);
}
// steady-state tag check in a cache-resident loop (check-cost.c), against the same loop without it
const ccDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dsu-bench-check-'));
let tagCheck;
if (ONLY !== 'eager') try {
  const exe = path.join(ccDir, 'check-cost');
  cp.execFileSync(process.env.CC || 'cc', ['-O2', '-pthread', '-I', path.join(REPO, 'libs', 'runtime', 'include'), '-o', exe, path.join(__dirname, 'check-cost.c'), path.join(RT, 'libdsu.a'), '-ldl']);
  const runs = [0, 1, 2].map(() => JSON.parse(cp.execFileSync(exe, { encoding: 'utf8' })));
  tagCheck = { ...runs.sort((a, b) => a.checkNs - b.checkNs)[1], note: 'median of 3; 1024 nodes visited 20000 times, best of 7 per variant' };
  delete tagCheck.sink;
  process.stderr.write(`tag check: ${tagCheck.checkNs} ns per check (cache-resident loop)\n`);
} finally {
  fs.rmSync(ccDir, { recursive: true, force: true });
}
const doc = {
  bench: 'data-updates',
  when: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, note: 'shared 2-core VM, other work running' },
  eager: results,
  lazy,
  tagCheck,
  targets: { nsPerInstance: 30, lazyPauseUs: 1000 },
  notMeasured: ['steady-state cost of tracking and room on the poll server'],
};
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(doc, null, 2) + '\n');
console.log(`| live instances | pause (median) | ns / instance | on cpu / instance |\n|---:|---:|---:|---:|`);
for (const r of results) console.log(`| ${r.liveInstances} | ${r.pauseUsMedian} us | ${r.nsPerInstance} | ${r.nsPerInstanceOnCpu} |`);
console.log(`\n| live instances | lazy pause (median) | first touch / instance | tag check / instance |\n|---:|---:|---:|---:|`);
for (const r of lazy) console.log(`| ${r.liveInstances} | ${r.pauseUsMedian} us | ${r.firstTouchNsPerInstance} ns | ${r.steadyCheckNsPerInstance} ns |`);
if (tagCheck) console.log(`\ntag check in a cache-resident loop: ${tagCheck.checkNs} ns`);
