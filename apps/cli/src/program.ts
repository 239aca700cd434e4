import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  installCommand,
  rolloutCommand,
  rolloutsCommand,
  submitCommand,
  versionDeleteCommand,
  versionsCommand,
} from './commands/remote';
import { upCommand } from './commands/up';
import { rolloutAbortCommand, rolloutRetryCommand } from './commands/rollout-control';
import { auditCommand, tokenCreateCommand, tokenListCommand, tokenRevokeCommand } from './commands/access';
import { applyCommand } from './commands/apply';
import { fleetVerifyCommand } from './commands/fleet-verify';
import { fleetCommand, programsCommand, psCommand } from './commands/listing';
import { keysAddCommand, keysListCommand, keysRemoveCommand } from './commands/keys';
import {
  buildCommand,
  checkCommand,
  defaultRunDir,
  patchCommand,
  rollbackCommand,
  stacksCommand,
  statusCommand,
} from './commands/local';
import { reportError } from './fail-with';
import { decorateHelp } from './help';
import { createOutput } from './output';

const positiveInt = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive integer`);
  return n;
};
const collect = (v: string, prev: string[]) => [...prev, v];
/** `--pid 12` or `--pid 12,13,14` (repeatable): one pid stays a number (the single-process output). */
const pidList = (v: string, prev?: number | number[]): number | number[] => {
  const more = v.split(',').map((p) => positiveInt('--pid')(p.trim()));
  const all = [...(prev === undefined ? [] : Array.isArray(prev) ? prev : [prev]), ...more];
  return all.length === 1 ? all[0] : all;
};

/**
 * Runs a command action and turns its result into the process exit code; an error it lets through
 * (an unreachable process, a refused request, a bad argument) is reported like every failure:
 * one `{"error": {"code", "message"}}` object with --json, a `dsu: ...` line otherwise.
 */
function action<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      // commander passes (...arguments, options, command) to an action
      const cmd = args[args.length - 1] as Command;
      process.exitCode = reportError(createOutput(Boolean(cmd.opts?.().json)), err);
    }
  };
}

export function buildProgram(): Command {
  const program = new Command('dsu')
    .description(
      'Dynamic software updating for C: move running C programs to a new version without a restart',
    )
    .version(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version)
    .showHelpAfterError()
    // Usage errors are thrown (main.ts), so `--json` gets its error object for them too; the
    // subcommands inherit this.
    .exitOverride()
    // `dsu submit --version V` is the submit's option, not the program's -V/--version.
    .enablePositionalOptions();
  const json = new Option('--json', 'print one JSON object');
  const pid = new Option('--pid <pid>', 'process id').argParser(positiveInt('--pid')).makeOptionMandatory();
  const runDir = new Option('--run-dir <dir>', 'directory of the control sockets (DSU_RUN_DIR)').default(
    defaultRunDir(),
  );
  const timeout = new Option('--timeout-ms <ms>', 'give up when the update cannot happen safely by then')
    .argParser(positiveInt('--timeout-ms'))
    .default(5000);

  program
    .command('build')
    .description(
      "build a program version with dsu-cc (runs the program's own build; default: make CC=dsu-cc)",
    )
    .argument('<src-dir>', 'source directory of the version')
    .requiredOption('--out <dir>', 'build directory to create')
    .option('--cmd <command>', 'build command run in the copied sources')
    .option('--bin <relpath>', 'the executable, relative to the sources (when the build makes several)')
    .option(
      '--update-point <FUNC:entry|FUNC:loop>',
      'add an update point without touching the source (repeatable)',
      collect,
      [],
    )
    .option(
      '--transaction <FUNC>',
      'treat each call of FUNC as one transaction: no update inside it may mix versions (repeatable)',
      collect,
      [],
    )
    .option('--label <version>', 'version label (default: the source directory name)')
    .option('--program <name>', 'program name (default: the executable name)')
    .option('--slop <spec>', "room for growth per struct, e.g. 'struct conn=128,struct wire=none'")
    .option(
      '--no-data',
      'code updates only: no room in structs, no allocation tracking (struct layouts can then never change live)',
    )
    .option(
      '--no-frames',
      'no stack-frame mapping: a function active on a stack (a main loop) is never replaced, the update waits until it returns',
    )
    .option(
      '--layout-from <build-dir>',
      'keep the struct capacities of an earlier build (patches from this build then apply to processes started from it)',
    )
    .option(
      '--sandbox',
      'build in the sandbox the compiler service uses: no network, only the build directory writable, $DSU_HOME invisible (docs/build-sandbox.md)',
    )
    .addOption(json)
    .action(action((src: string, o) => buildCommand(src, o, createOutput(Boolean(o.json)))));

  program
    .command('patch')
    .description('generate a patch bundle that moves a running build to a newer one')
    .argument('[old-build-dir]')
    .argument('[new-build-dir]')
    .option('--out <dir>', 'patch bundle directory to create')
    .option(
      '--rebuild <patch-dir>',
      'compile a bundle again after editing its units/*.i or patch.c (new patch id)',
    )
    .option('--spec <patch.yaml>', 'field renames, defaults and custom transformers for changed types')
    .option('--transform <eager|lazy>', 'how live instances of changed types are transformed (default eager)')
    .addOption(json)
    .action(
      action((from: string | undefined, to: string | undefined, o) =>
        patchCommand(from, to, o, createOutput(Boolean(o.json))),
      ),
    );

  program
    .command('check')
    .description('check a patch bundle; exit 0 approved, 1 rejected')
    .argument('<patch-dir>')
    .addOption(json)
    .action(action((dir: string, o) => checkCommand(dir, createOutput(Boolean(o.json)))));

  program
    .command('apply')
    .description(
      'apply a checked, signed patch bundle to a running process (refused when unsigned, altered, rejected or for another build); exit 0 only when applied',
    )
    .argument('<patch-dir>')
    .addOption(
      new Option('--pid <pid[,pid...]>', 'the process(es) to update, side by side').argParser(pidList),
    )
    .option('--all', "every process in the run directory that runs --program (default: the patch's program)")
    .option('--program <name>', 'with --all: the program whose processes to update')
    .option(
      '--concurrency <n>',
      'processes updated at once (default DSU_APPLY_CONCURRENCY, else 16)',
      positiveInt('--concurrency'),
    )
    .addOption(timeout)
    .addOption(runDir)
    .option(
      '--allow-unsigned',
      'LOCAL DEVELOPMENT ONLY: apply a bundle that was never checked or whose signature does not verify (a rejected verdict is still refused)',
    )
    .addOption(json)
    .action(action((dir: string, o) => applyCommand(dir, o, createOutput(Boolean(o.json)))));

  const keys = program
    .command('keys')
    .description(
      'the local signing key (dsu check signs approved bundles with it) and the trusted public keys (dsu apply and the applier accept their signatures)',
    )
    .addOption(json)
    .action(action((o) => keysListCommand(createOutput(Boolean(o.json)))));
  keys
    .command('add')
    .description("trust a checker's Ed25519 public key (PEM), e.g. the next key during a rotation")
    .argument('<public-key-file>')
    .option('--name <name>', 'a name shown by dsu keys (default: the file name)')
    .addOption(json)
    .action(action((file: string, o) => keysAddCommand(file, o, createOutput(Boolean(o.json)))));
  keys
    .command('remove')
    .description('stop trusting a key added with dsu keys add')
    .argument('<keyId>', "the key's id (see 'dsu keys')")
    .addOption(json)
    .action(action((id: string, o) => keysRemoveCommand(id, createOutput(Boolean(o.json)))));

  program
    .command('rollback')
    .description('undo the last patch applied to a running process')
    .addOption(pid)
    .addOption(timeout)
    .addOption(runDir)
    .addOption(json)
    .action(action((o) => rollbackCommand(o, createOutput(Boolean(o.json)))));

  program
    .command('status')
    .description('program, build id, threads, update points and patches of a running process')
    .addOption(pid)
    .addOption(runDir)
    .addOption(json)
    .action(action((o) => statusCommand(o, createOutput(Boolean(o.json)))));

  program
    .command('stacks')
    .description("each thread's stack by function, as the runtime captures it (why an update waits)")
    .addOption(pid)
    .addOption(runDir)
    .addOption(json)
    .action(action((o) => stacksCommand(o, createOutput(Boolean(o.json)))));

  program
    .command('ps')
    .description('the DSU-enabled processes of this user on this host: program, version, build, patches')
    .addOption(runDir)
    .addOption(json)
    .action(action((o) => psCommand(o, createOutput(Boolean(o.json)))));

  program
    .command('up')
    .description(
      'run the five pipeline services in one process (in-process bus + SQLite; Kafka / PostgreSQL when KAFKA_BROKERS / DATABASE_URL are set)',
    )
    .option('--port <port>', 'HTTP port of the gateway (default DSU_GATEWAY_PORT or 7400)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535)
        throw new InvalidArgumentError('--port must be a port number (0-65535)');
      return n;
    })
    .addOption(json)
    .action(action((o) => upCommand(o, createOutput(Boolean(o.json)))));

  program
    .command('submit')
    .description(
      'upload a version to the gateway (DSU_GATEWAY); wait for its build and, when an earlier version exists, the patch verdict',
    )
    .argument('<src-dir>', 'source directory of the version')
    .requiredOption('--program <id>', 'program id in the registry')
    .requiredOption('--version <label>', 'version label')
    .option('--bin <relpath>', 'the executable, relative to the sources (when the build makes several)')
    .option(
      '--update-point <FUNC:entry|FUNC:loop>',
      'add an update point without touching the source (repeatable)',
      collect,
      [],
    )
    .addOption(json)
    .action(action((src: string, o) => submitCommand(src, o, createOutput(Boolean(o.json)))));

  program
    .command('install')
    .description(
      'download a built version (executable under its --bin name, and its program model), ready to run',
    )
    .argument('<program>')
    .argument('<version>')
    .requiredOption('--out <dir>', 'directory to write to')
    .addOption(json)
    .action(action((p: string, v: string, o) => installCommand(p, v, o, createOutput(Boolean(o.json)))));

  const rollout = program
    .command('rollout')
    .description(
      "move every running process of a program to a version, on every host; waits for each targeted process ('dsu rollout abort|retry <id>' control one)",
    )
    .argument('<program>')
    // Not requiredOption: commander would demand it of `rollout abort|retry` too.
    .option('--to <version>', 'target version (required)')
    .option('--allow-empty', 'exit 0 when no process needs the update (else: error nothing-to-update)')
    .addOption(json)
    .action(
      action((p: string, o) => {
        if (!o.to) rollout.error("error: required option '--to <version>' not specified");
        return rolloutCommand(p, o, createOutput(Boolean(o.json)));
      }),
    );
  rollout
    .command('abort')
    .description('end a requested or running rollout as aborted (commands already sent are not recalled)')
    .argument('<id>', "the rollout's id (see 'dsu rollouts')")
    .requiredOption('--reason <text>', 'why (kept in the rollout notes and the audit log)')
    .addOption(json)
    .action(action((id: string, o) => rolloutAbortCommand(id, o, createOutput(Boolean(o.json)))));
  rollout
    .command('retry')
    .description('start a finished rollout over (a new rollout to the same version); waits for it')
    .argument('<id>', "the aborted, failed or completed rollout's id")
    .option('--allow-empty', 'exit 0 when no process needs the update (else: error nothing-to-update)')
    .addOption(json)
    .action(action((id: string, o) => rolloutRetryCommand(id, o, createOutput(Boolean(o.json)))));

  program
    .command('programs')
    .description('the registered programs: how many versions, the latest and the latest built')
    .addOption(json)
    .action(action((o) => programsCommand(createOutput(Boolean(o.json)))));

  const fleet = program
    .command('fleet')
    .description(
      "every host's DSU-enabled processes as their appliers last reported them: program, version, build, patches ('dsu fleet verify' proves a version runs everywhere)",
    )
    .option('--program <id>', 'only this program')
    .option('--build <id>', 'only processes running this build (a prefix of its id)')
    .option('--not-on <version>', 'only processes not running this version')
    .addOption(json)
    .action(action((o) => fleetCommand(o, createOutput(Boolean(o.json)))));
  fleet
    .command('verify')
    .description(
      "exit 0 only when every live process of the program runs the version's code, as each process's runtime reports it in a heartbeat sent after the command started",
    )
    .argument('<program>')
    .requiredOption('--to <version>', 'the version every process must run')
    .option('--timeout-ms <ms>', 'how long to wait for every host to report (default 60000)')
    .addOption(json)
    .action(action((p: string, o) => fleetVerifyCommand(p, o, createOutput(Boolean(o.json)))));

  const versions = program
    .command('versions')
    .description(
      "a program's versions in the registry ('dsu versions delete <program> <version>' removes a failed one)",
    )
    .argument('<program>')
    .addOption(json)
    .action(action((p: string, o) => versionsCommand(p, createOutput(Boolean(o.json)))));
  versions
    .command('delete')
    .description('delete a version whose build failed, so its label can be submitted again')
    .argument('<program>')
    .argument('<version>')
    .addOption(json)
    .action(action((p: string, v: string, o) => versionDeleteCommand(p, v, createOutput(Boolean(o.json)))));

  program
    .command('rollouts')
    .description('rollouts in the registry')
    .option('--program <id>', 'only this program')
    .addOption(json)
    .action(action((o) => rolloutsCommand(o, createOutput(Boolean(o.json)))));

  const token = program
    .command('token')
    .description("the gateway's API tokens (needs an admin token; 'dsu up' writes one to $DSU_HOME/token)");
  token
    .command('create')
    .description('create an API token; prints it once (the gateway stores only its hash)')
    .requiredOption('--name <name>', 'who or what the token is for (shown in the audit log)')
    .requiredOption('--scopes <list>', 'comma-separated: submit, rollout, read, admin')
    .addOption(json)
    .action(action((o) => tokenCreateCommand(o, createOutput(Boolean(o.json)))));
  token
    .command('list')
    .description('list the tokens: name, scopes, created, last used, revoked')
    .addOption(json)
    .action(action((o) => tokenListCommand(createOutput(Boolean(o.json)))));
  token
    .command('revoke')
    .description('revoke a token for good')
    .argument('<id>', "the token's id (tok_...; see 'dsu token list')")
    .addOption(json)
    .action(action((id: string, o) => tokenRevokeCommand(id, createOutput(Boolean(o.json)))));

  program
    .command('audit')
    .description('who submitted, approved (the checker), rolled out, created or revoked tokens')
    .option('--program <id>', 'only this program')
    .option('--limit <n>', 'the latest n entries (default 100, at most 1000)', positiveInt('--limit'))
    .addOption(json)
    .action(action((o) => auditCommand(o, createOutput(Boolean(o.json)))));

  decorateHelp(program);
  return program;
}
