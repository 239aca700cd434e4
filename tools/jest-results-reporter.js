// Jest reporter that writes each project's aggregated results to tmp/test-results/<project>.json,
// so tools/summarize-tests.js can print one closing line for the whole run.
const fs = require('node:fs');
const path = require('node:path');

class ResultsFileReporter {
  constructor(globalConfig, options = {}) {
    this.project = options.project || 'unknown';
  }

  onRunComplete(_contexts, results) {
    const dir = path.join(__dirname, '..', 'tmp', 'test-results');
    fs.mkdirSync(dir, { recursive: true });
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests, numRuntimeErrorTestSuites } = results;
    // What failed, briefly (suites that could not run, failed tests with their first message)
    const failures = [];
    for (const suite of results.testResults || []) {
      const file = path.relative(path.join(__dirname, '..'), suite.testFilePath || '');
      if (suite.testExecError || (suite.failureMessage && !suite.testResults.some((t) => t.status === 'failed')))
        failures.push({ name: file, message: String(suite.testExecError?.message || suite.failureMessage).slice(0, 2000) });
      for (const t of suite.testResults || [])
        if (t.status === 'failed') failures.push({ name: `${file}: ${t.fullName}`, message: (t.failureMessages || []).join('\n').slice(0, 2000) });
    }
    fs.writeFileSync(
      path.join(dir, `${this.project}.json`),
      JSON.stringify({ numPassedTests, numFailedTests, numPendingTests, numTodoTests, numRuntimeErrorTestSuites, failures }),
    );
  }
}

module.exports = ResultsFileReporter;
