// dsu check's time (the safety analysis) on a 10k-line program and on sqlite3.c's model, beside
// the compile time; writes bench/results/safety-check.json. Options: --runs N (default 3) --out FILE
'use strict';
/* global structuredClone */
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { log, median, round, sh, timed, q, machineInfo } = require('../lib/harness');
const { generate } = require('./gen');

const root = path.resolve(__dirname, '../..');
const dsu = path.join(root, 'apps/cli/bin/dsu.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('--runs', '3'));
const outFile = opt('--out', path.join(root, 'bench/results/safety-check.json'));

function generated(work) {
  const lines = generate(path.join(work, 'src-v1'), { variant: 1 });
  generate(path.join(work, 'src-v2'), { variant: 2 });
  log(`generated program: ${lines} lines in 21 units`);
  const build = (v, extra = '') => timed(`node ${q(dsu)} build ${q(path.join(work, `src-${v}`))} --out ${q(path.join(work, v))} ${extra}`);
  const b1 = build('v1');
  const b2 = build('v2', `--layout-from ${q(path.join(work, 'v1'))}`);
  const cc = timed(`make -s -C ${q(path.join(work, 'src-v1'))} CC=cc -B`);
  const patch = timed(`node ${q(dsu)} patch ${q(path.join(work, 'v1'))} ${q(path.join(work, 'v2'))} --out ${q(path.join(work, 'p'))}`);
  const checks = [];
  for (let r = 0; r < runs; r++) checks.push(timed(`node ${q(dsu)} check ${q(path.join(work, 'p'))} --json`, { check: false }).wall);
  const verdict = JSON.parse(sh('node', [dsu, 'check', path.join(work, 'p'), '--json'], { check: false }).stdout.trim().split('\n').pop());
  return {
    lines,
    checkWallS: round(median(checks)),
    checkRunsS: checks,
    dsuBuildWallS: round((b1.wall + b2.wall) / 2),
    ccBuildWallS: cc.wall,
    patchWallS: patch.wall,
    verdict: verdict.verdict,
    allowed: verdict.updatePoints.allowed,
    denied: verdict.updatePoints.denied,
  };
}

async function sqlite(work) {
  const src = path.join(root, 'node_modules/better-sqlite3/deps/sqlite3/sqlite3.c');
  if (!fs.existsSync(src)) return { skipped: `no ${src}` };
  const { analyzeUnit, buildProgramModel } = require('@dsu/c-frontend');
  const { checkSafety } = require('@dsu/analysis');
  fs.mkdirSync(work, { recursive: true });
  const t0 = performance.now();
  const unit = await analyzeUnit({ source: src, flags: ['-O2', '-DSQLITE_THREADSAFE=1', '-c', src], cwd: work });
  const frontS = (performance.now() - t0) / 1000;
  for (const t of unit.types) if (t.kind === 'struct' && t.updatable) t.capacity = t.size + 32;
  const from = buildProgramModel('sqlite3', 'v1', [unit]);
  // a release: every 50th function's body changes, and one widely used struct grows
  const to = structuredClone(from);
  to.buildId = 'v2';
  const fns = Object.values(from.functions);
  const changed = fns.filter((_, i) => i % 50 === 0).map((f) => f.key);
  for (const k of changed) to.functions[k].bodyHash = 'changed';
  const grown = 'struct Mem';
  const manifest = {
    format: 1, patchId: 'bench', program: 'sqlite3', from: { buildId: 'v1', version: 'v1' }, to: { buildId: 'v2', version: 'v2' },
    soSha256: '0'.repeat(64),
    functions: [
      ...changed.map((key) => ({ key, change: 'body' })),
      ...fns.filter((f) => f.typesUsed.includes(grown) && !changed.includes(f.key)).map((f) => ({ key: f.key, change: 'body' })),
    ],
    types: from.types[grown] ? [{ name: grown, oldLayoutHash: 'a', newLayoutHash: 'b', oldSize: from.types[grown].size, newSize: from.types[grown].size + 8, capacity: from.types[grown].capacity, mode: 'eager', transformer: '', fields: [], instances: { heap: '', globals: [], embeddedIn: [] } }] : [],
    globals: [],
    allowedUpdatePoints: [],
  };
  const times = [];
  let verdict;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    verdict = checkSafety({ from, to, manifest });
    times.push((performance.now() - t) / 1000);
  }
  return {
    functions: fns.length,
    patchFunctions: manifest.functions.length,
    checkS: round(median(times)),
    checkRunsS: times.map((t) => round(t)),
    frontEndS: round(frontS),
    updatePoints: verdict.updatePoints.allowed.length + verdict.updatePoints.denied.length,
    denied: verdict.updatePoints.denied.length,
  };
}

(async () => {
  const work = fs.mkdtempSync('/tmp/dsu-bench-check-');
  try {
    const result = { date: new Date().toISOString(), machine: machineInfo({ repo: root, clang: 'clang-19', pinned: false }), runs, generated: generated(path.join(work, 'gen')), sqlite3: await sqlite(path.join(work, 'sqlite')) };
    fs.writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
    log(`dsu check: ${result.generated.lines}-line program ${result.generated.checkWallS} s (dsu build ${result.generated.dsuBuildWallS} s, cc ${result.generated.ccBuildWallS} s); sqlite3.c model ${result.sqlite3.checkS} s (front end ${result.sqlite3.frontEndS} s)`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
