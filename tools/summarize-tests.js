#!/usr/bin/env node
// Adds up the Jest result files of every project (tmp/test-results/*.json) and the C runtime's
// summary, and prints one closing line `tests: N passed, M failed, K skipped`.
// Exits non-zero when a test failed or when no test ran at all.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'tmp', 'test-results');
let passed = 0;
let failed = 0;
let skipped = 0;
for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const file = path.join(dir, f);
  if (f.endsWith('.json')) {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numRuntimeErrorTestSuites || 0);
    skipped += r.numPendingTests + r.numTodoTests;
  } else if (f.endsWith('.txt')) {
    // C test suites write their own `N passed, M failed` line.
    const m = /(\d+) passed, (\d+) failed/.exec(fs.readFileSync(file, 'utf8'));
    if (m) {
      passed += Number(m[1]);
      failed += Number(m[2]);
    }
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
