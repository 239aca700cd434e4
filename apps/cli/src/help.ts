import type { Command } from 'commander';

// What `dsu <command> --help` adds to commander's help: examples, the environment variables the
// command reads, descriptions of arguments registered without one, and "(required)" on required
// options. Kept apart from program.ts so every command's help is in one table.

interface HelpEntry {
  /** Descriptions of positional arguments, by name, for those registered without one. */
  args?: Record<string, string>;
  examples: string[];
  env: string[];
}

const REMOTE_ENV = [
  'DSU_GATEWAY         the gateway URL (default http://127.0.0.1:$DSU_GATEWAY_PORT, port 7400)',
  'DSU_TOKEN           the API token (else DSU_TOKEN_FILE, else $DSU_HOME/token written by dsu up)',
  'DSU_TOKEN_FILE      a file holding the API token',
  'DSU_HOME            where dsu up keeps its state and token (default ~/.dsu)',
];
const WAIT_ENV = 'DSU_WAIT_TIMEOUT_MS give up waiting after this many ms (default 900000, 15 min)';
const RUN_DIR_ENV =
  "DSU_RUN_DIR         directory of the processes' control sockets (default a per-user /tmp directory)";
const KEY_ENV = [
  'DSU_SIGNING_KEY     the Ed25519 signing key (default $DSU_HOME/keys/checker-ed25519.pem)',
  'DSU_TRUSTED_KEY     trusted public key files or directories, ,- or :-separated (default the local key)',
  'DSU_TRUSTED_KEYS_DIR keys added with dsu keys add (default $DSU_HOME/keys/trusted)',
  'DSU_HOME            default ~/.dsu',
];
const COMPILER_ENV = [
  'DSU_CLANG           the clang dsu-cc analyzes and compiles with (default the newest clang on PATH)',
  'DSU_CC              the compiler for non-C steps (default cc)',
  'DSU_HOME            hidden from --sandbox builds (default ~/.dsu)',
];

/** Help per command path ('rollout abort' for a subcommand). */
const HELP: Record<string, HelpEntry> = {
  build: {
    args: { 'src-dir': 'source directory of the version' },
    examples: [
      'dsu build ./app-v1 --out build/v1 --update-point serve:loop',
      'dsu build ./app-v2 --out build/v2 --update-point serve:loop --layout-from build/v1 --json',
      'dsu build ./src --out build/v3 --cmd "make -C src app" --bin src/app --transaction handle_request',
    ],
    env: COMPILER_ENV,
  },
  patch: {
    args: {
      'old-build-dir': 'build directory of the running version (from dsu build --out)',
      'new-build-dir': 'build directory of the version to move to',
    },
    examples: [
      'dsu patch build/v1 build/v2 --out patches/v1-v2',
      'dsu patch build/v1 build/v2 --out patches/v1-v2 --spec patch.yaml --transform lazy',
      'dsu patch --rebuild patches/v1-v2        # after editing units/*.i or patch.c',
    ],
    env: ['DSU_CLANG           the clang patch units are compiled with'],
  },
  check: {
    args: { 'patch-dir': 'patch bundle directory (from dsu patch --out)' },
    examples: ['dsu check patches/v1-v2', 'dsu check patches/v1-v2 --json | jq .updatePoints'],
    env: KEY_ENV,
  },
  apply: {
    args: { 'patch-dir': 'a checked and signed patch bundle directory' },
    examples: [
      'dsu apply patches/v1-v2 --pid 4242',
      'dsu apply patches/v1-v2 --pid 4242,4243 --timeout-ms 10000 --json',
      'dsu apply patches/v1-v2 --all --program app --run-dir ./run',
    ],
    env: [RUN_DIR_ENV, 'DSU_APPLY_CONCURRENCY processes updated at once (default 16)', ...KEY_ENV],
  },
  keys: { examples: ['dsu keys', 'dsu keys --json'], env: KEY_ENV },
  'keys add': {
    args: { 'public-key-file': "the checker's Ed25519 public key (PEM), e.g. checker-ed25519.pub.pem" },
    examples: ['dsu keys add checker-b.pub.pem --name checker-b'],
    env: KEY_ENV,
  },
  'keys remove': { examples: ['dsu keys remove 3f2a9c...'], env: KEY_ENV },
  rollback: { examples: ['dsu rollback --pid 4242', 'dsu rollback --pid 4242 --json'], env: [RUN_DIR_ENV] },
  status: {
    examples: ['dsu status --pid 4242', 'dsu status --pid 4242 --run-dir ./run --json'],
    env: [RUN_DIR_ENV],
  },
  stacks: { examples: ['dsu stacks --pid 4242'], env: [RUN_DIR_ENV] },
  ps: { examples: ['dsu ps', 'dsu ps --run-dir ./run --json'], env: [RUN_DIR_ENV] },
  up: {
    examples: [
      'dsu up',
      'dsu up --port 7500',
      'DSU_BIND=0.0.0.0 DSU_TLS_CERT=c.pem DSU_TLS_KEY=k.pem dsu up',
    ],
    env: [
      'DSU_HOME            state: SQLite database, artifacts, keys, token (default ~/.dsu)',
      'DSU_GATEWAY_PORT    the gateway port when --port is not given (default 7400)',
      'DSU_BIND            the address to listen on (default 127.0.0.1)',
      'KAFKA_BROKERS       use Kafka instead of the in-process bus',
      'DATABASE_URL        use PostgreSQL instead of SQLite',
      'DSU_TLS_CERT, DSU_TLS_KEY   serve HTTPS',
      'DSU_GATEWAY_READS   token (default) or open: whether GET endpoints need a token',
      "DSU_RUN_DIR, DSU_HOST_ID    the embedded applier's run directory and host id",
      '(more in README.md: Configuration, and docs/security.md)',
    ],
  },
  submit: {
    args: { 'src-dir': 'source directory of the version (uploaded as a gzip tarball)' },
    examples: [
      'dsu submit ./app-v1 --program app --version v1 --update-point serve:loop',
      'dsu submit ./app-v2 --program app --version v2 --update-point serve:loop --json',
    ],
    env: [...REMOTE_ENV, WAIT_ENV],
  },
  install: {
    args: { program: 'program id in the registry', version: 'version label' },
    examples: ['dsu install app v1 --out run/app && DSU_RUN_DIR=./run run/app/app &'],
    env: REMOTE_ENV,
  },
  rollout: {
    args: { program: 'program id in the registry' },
    examples: [
      'dsu rollout app --to v2',
      'dsu rollout app --to v2 --json',
      'dsu rollout app --to v2 --allow-empty   # exit 0 even when every process already runs v2',
    ],
    env: [...REMOTE_ENV, WAIT_ENV],
  },
  'rollout abort': {
    examples: ['dsu rollout abort 01J9Z... --reason "bad canary"'],
    env: REMOTE_ENV,
  },
  'rollout retry': { examples: ['dsu rollout retry 01J9Z...'], env: [...REMOTE_ENV, WAIT_ENV] },
  versions: {
    args: { program: 'program id in the registry' },
    examples: ['dsu versions app', 'dsu versions app --json'],
    env: REMOTE_ENV,
  },
  'versions delete': {
    args: { program: 'program id in the registry', version: 'the failed version' },
    examples: ['dsu versions delete app v3   # then: dsu submit ./app-v3 --program app --version v3'],
    env: REMOTE_ENV,
  },
  programs: { examples: ['dsu programs', 'dsu programs --json'], env: REMOTE_ENV },
  fleet: {
    examples: [
      'dsu fleet',
      'dsu fleet --program app --not-on v2   # who still needs v2, and why not',
      'dsu fleet --program app --json',
    ],
    env: REMOTE_ENV,
  },
  'fleet verify': {
    args: { program: 'the registered program whose processes to check' },
    examples: [
      'dsu fleet verify app --to v2          # exit 0 only when every live process of app runs v2',
      'dsu fleet verify app --to v2 --json   # {verified, processes: [{host, pid, buildId, version, onTarget}]}',
    ],
    env: REMOTE_ENV,
  },
  rollouts: { examples: ['dsu rollouts', 'dsu rollouts --program app --json'], env: REMOTE_ENV },
  'token create': {
    examples: ['dsu token create --name ci --scopes submit,rollout,read'],
    env: REMOTE_ENV,
  },
  'token list': { examples: ['dsu token list'], env: REMOTE_ENV },
  'token revoke': { examples: ['dsu token revoke tok_0123456789abcdef'], env: REMOTE_ENV },
  audit: { examples: ['dsu audit --program app --limit 20'], env: REMOTE_ENV },
};

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Adds the table's examples and environment variables after each command's help, fills in missing
 * argument descriptions, and marks required options; every command, subcommands included.
 */
export function decorateHelp(program: Command): void {
  program.addHelpText(
    'after',
    '\nEvery command takes --json (one JSON object on stdout, failures as {"error": {"code", "message"}})\nand --help. Start with: dsu up, then dsu submit / dsu rollout (README.md).',
  );
  const visit = (cmd: Command) => {
    for (const sub of cmd.commands) {
      const entry = HELP[pathOf(sub)];
      for (const opt of sub.options)
        if (opt.mandatory && !/\(required\)/.test(opt.description)) opt.description += ' (required)';
      for (const arg of sub.registeredArguments)
        if (!arg.description && entry?.args?.[arg.name()]) arg.description = entry.args[arg.name()];
      if (entry) {
        const lines = ['', 'Examples:', ...entry.examples.map((e) => `  $ ${e}`)];
        if (entry.env.length) lines.push('', 'Environment:', ...entry.env.map((e) => `  ${e}`));
        sub.addHelpText('after', lines.join('\n'));
      }
      visit(sub);
    }
  };
  visit(program);
}

/** Command paths the table describes (for the test that every command has help). */
export const describedCommands = () => Object.keys(HELP);
