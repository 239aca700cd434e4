import { buildProgram } from './program';
import { reportError } from './fail-with';
import { createOutput } from './output';

// `dsu ... --help | head`: a reader that stopped reading is no error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

buildProgram()
  .parseAsync(process.argv)
  .catch((err: Error & { exitCode?: number; code?: string }) => {
    // --help and --version end here too (exitOverride), with exit code 0 and nothing to add.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exit(0);
    const code = reportError(createOutput(process.argv.includes('--json')), err);
    process.exit(code);
  });
