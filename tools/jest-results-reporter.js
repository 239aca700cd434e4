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
    fs.writeFileSync(
      path.join(dir, `${this.project}.json`),
      JSON.stringify({ numPassedTests, numFailedTests, numPendingTests, numTodoTests, numRuntimeErrorTestSuites }),
    );
  }
}

module.exports = ResultsFileReporter;
