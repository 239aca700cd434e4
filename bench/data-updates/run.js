#!/usr/bin/env node
// Eager data-update pause: the runtime's data test program (libs/runtime/tests/progs/data.c: a
// linked list of N tracked heap nodes, 3 heap containers embedding one, a global array of 4) gets
// the v2 patch (a field widened, one added: every instance transformed). Measures the COMMIT
// reply's pauseUs / transformUs and the program's RSS. Needs `make -C libs/runtime test` first.
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
    const m = /data: \d+ instances: collect (\d+) us, prepare (\d+) us, commit (\d+) us/.exec(fs.readFileSync(errFile, 'utf8'));
    const phasesUs = m ? { collect: Number(m[1]), prepare: Number(m[2]), commit: Number(m[3]) } : null;
    return { instances: r.instances, pauseUs: r.pauseUs, transformUs: r.transformUs, phasesUs, rssKb: rss };
  } finally {
    child.kill('SIGTERM');
    fs.rmSync(run, { recursive: true, force: true });
  }
}

const results = [];
for (const n of SIZES) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(once(n));
  const pause = median(runs.map((r) => r.pauseUs));
  const row = {
    liveInstances: runs[0].instances,
    pauseUsMedian: pause,
    transformUsMedian: median(runs.map((r) => r.transformUs)),
    nsPerInstance: Math.round((pause * 1000) / runs[0].instances),
    rssKbBefore: median(runs.map((r) => r.rssKb)),
    runs,
  };
  results.push(row);
  process.stderr.write(`${row.liveInstances} instances: pause ${pause} us (${row.nsPerInstance} ns/instance); phases of run 1: ${JSON.stringify(runs[0].phasesUs)}\n`);
}
const doc = {
  bench: 'data-updates',
  when: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, note: 'shared 2-core VM, other work running' },
  eager: results,
  targets: { nsPerInstance: 30 },
  notMeasured: ['lazy pause and first-touch cost (lazy mode not implemented)', 'steady-state cost of tracking and room on the poll server'],
};
fs.mkdirSync(path.dirname(OUT), { recursive: true });
fs.writeFileSync(OUT, JSON.stringify(doc, null, 2) + '\n');
console.log(`| live instances | pause (median) | ns / instance |\n|---:|---:|---:|`);
for (const r of results) console.log(`| ${r.liveInstances} | ${r.pauseUsMedian} us | ${r.nsPerInstance} |`);
