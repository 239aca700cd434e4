import { buildProgram } from './program';
import { reportError } from './fail-with';
import { createOutput } from './output';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: Error & { exitCode?: number; code?: string }) => {
    // --help and --version end here too (exitOverride), with exit code 0 and nothing to add.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    const code = reportError(createOutput(process.argv.includes('--json')), err);
    process.exit(code);
  });
