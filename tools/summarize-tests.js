#!/usr/bin/env node
// Adds up the Jest result files of every project (tmp/test-results/*.json) and the C runtime's
// summary, and prints one closing line `tests: N passed, M failed, K skipped`.
// Exits non-zero when a test failed or when no test ran at all. Failures are repeated just above
// that line (names, first lines of the messages, sanitizer report excerpts) so that the tail of a
// long CI log is enough to see what broke.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'tmp', 'test-results');
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const clip = (text, lines) => text.split('\n').slice(0, lines).map((l) => `    ${l}`).join('\n');
for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const file = path.join(dir, f);
  if (f.endsWith('.json')) {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
    skipped += r.numPendingTests + r.numTodoTests;
    for (const x of r.failures || []) failures.push(`${f}: ${x.name}\n${clip(x.message, 14)}`);
  } else if (f.endsWith('.txt')) {
    // C test suites write their own `N passed, M failed` line.
    const text = fs.readFileSync(file, 'utf8');
    const m = /(\d+) passed, (\d+) failed/.exec(text);
    if (m) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    }
    const lines = text.split('\n');
    const notOk = lines.filter((l) => /^\s*not ok - /.test(l));
    if (notOk.length) failures.push(`${f}:\n${clip(notOk.join('\n'), 30)}`);
    // A sanitizer report names the bug; show the start of the first one.
    const san = lines.findIndex((l) => /(ThreadSanitizer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)/.test(l));
    if (san >= 0 && notOk.length) failures.push(`${f}: sanitizer report\n${clip(lines.slice(Math.max(0, san - 2)).join('\n'), 40)}`);
  }
}
if (failures.length) console.log(`failures:\n${failures.slice(0, 40).join('\n')}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
