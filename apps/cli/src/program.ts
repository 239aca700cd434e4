import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { runSmoke } from './commands/smoke';

/** Prints the result as one JSON object (`--json`) or as readable lines. */
function output(json: boolean) {
  return {
    log: (line: string) => {
      if (!json) console.log(line);
    },
    result: (value: unknown) => {
      if (json) console.log(JSON.stringify(value));
    },
  };
}

export function buildProgram(): Command {
  const program = new Command('dsu')
    .description('Dynamic software updating for C: move running C programs to a new version without a restart')
    .version(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version)
    .showHelpAfterError();

  program
    .command('smoke')
    .description('run the smoke pipeline on the embedded default (SQLite registry, in-process bus, artifact store, cc)')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const out = output(Boolean(opts.json));
      const result = await runSmoke(out.log);
      out.result(result);
      out.log(`smoke pipeline ok in ${result.ms} ms`);
    });

  return program;
}
