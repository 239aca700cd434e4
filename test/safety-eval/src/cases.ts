/**
 * The version pairs of the safety evaluation, each with its workload and the specification of
 * both versions: a reducer from (state, request line) to (state, reply line) per version, and
 * the state mapping a correct update performs. A run is correct when its replies equal the
 * old version's up to some request and the new version's after it, continuing from the mapped
 * state (Hayden et al., TSE 2012: an update is correct when it behaves like one applied at a
 * quiescent moment).
 */
export interface VersionSpec<S> {
  init: () => S;
  step: (state: S, line: string) => [S, string];
}

export interface EvalCase<A = unknown, B = unknown> {
  name: string;
  /** Under test/fixtures/safety. */
  fixture: string;
  /** patch.yaml next to the versions, if the patch needs one. */
  spec?: string;
  /** Extra `dsu build` arguments (both versions). */
  build?: string[];
  /** Under test/fixtures instead of test/fixtures/safety (the project's other fixtures). */
  fixtureRoot?: string;
  /** `tcp`: a line server on loopback (`<exe> 0` prints `listening <port>`); default stdin/stdout. */
  transport?: 'stdio' | 'tcp';
  workload: string[];
  /** Requests before which the update is armed (each is one trial per update point). */
  armBefore: number[];
  v1: VersionSpec<A>;
  v2: VersionSpec<B>;
  migrate: (state: A) => B;
}

const stateless = (reply: (line: string) => string): VersionSpec<null> => ({
  init: () => null,
  step: (s, line) => [s, reply(line)],
});

function permissionReply(line: string): string {
  const [user, path] = line.trim().split(/\s+/);
  if (!user) return 'NOAUTH';
  const ok = user === 'admin' || path.startsWith('/public/');
  return `${ok ? 'OK' : 'DENIED'} ${path}`;
}

const permission: EvalCase<null, null> = {
  name: 'permission check moved between two calls of one request',
  fixture: 'permission',
  workload: ['admin /etc/passwd', 'bob /public/a', 'bob /secret', 'eve /secret', 'bob /public/b', 'eve /x'],
  armBefore: [2, 3],
  v1: stateless(permissionReply),
  v2: stateless(permissionReply),
  migrate: () => null,
};

interface Window {
  requests: number;
  bytes: number;
  longLines: number;
}
const statsSpec = (withLong: boolean): VersionSpec<Window> => ({
  init: () => ({ requests: 0, bytes: 0, longLines: 0 }),
  step: (w, line) => {
    if (line === 'end') return [{ requests: 0, bytes: 0, longLines: 0 }, 'session over'];
    const n = line.length + 1;
    const next = { requests: w.requests + 1, bytes: w.bytes + n, longLines: w.longLines + (n > 80 ? 1 : 0) };
    return [
      next,
      withLong ? `${next.requests} ${next.bytes} ${next.longLines}` : `${next.requests} ${next.bytes}`,
    ];
  },
});

const stackstruct: EvalCase<Window, Window> = {
  name: 'struct layout change with old code still running',
  fixture: 'stackstruct',
  workload: ['a', 'bb', 'x'.repeat(90), 'end', 'ccc', 'y'.repeat(100), 'dd', 'end', 'e'],
  armBefore: [1, 4],
  v1: statsSpec(false),
  v2: statsSpec(true),
  migrate: (w) => ({ ...w, longLines: 0 }),
};

const counter = (): VersionSpec<number> => ({
  init: () => 0,
  step: (n, line) => [n + 1, `#${n + 1} ${line}`],
});

const split: EvalCase<number, number> = {
  name: 'function split in two',
  fixture: 'split',
  workload: ['a', 'b', 'c', 'd', 'e', 'f'],
  armBefore: [2, 4],
  v1: counter(),
  v2: counter(),
  migrate: (n) => n,
};

interface Quota {
  limit: number;
  used: number;
}
const quotaSpec: VersionSpec<Quota> = {
  init: () => ({ limit: 0, used: 0 }),
  step: (q, line) => {
    const limit = /^LIMIT (\d+)$/.exec(line);
    if (limit) return [{ ...q, limit: Number(limit[1]) }, `limit ${limit[1]} kB`];
    const use = /^USE (\d+)$/.exec(line);
    if (use) {
      const next = { ...q, used: q.used + Number(use[1]) };
      return [next, `${next.used <= next.limit ? 'ok' : 'over'} ${next.used}/${next.limit} kB`];
    }
    return [q, 'session over'];
  },
};

const quota: EvalCase<Quota, Quota> = {
  name: 'a field whose meaning changes (kB to bytes)',
  fixture: 'quota',
  spec: 'v1-v2.patch.yaml',
  workload: ['LIMIT 100', 'USE 30', 'USE 50', 'USE 10', 'USE 40', 'END', 'USE 5'],
  armBefore: [2, 6],
  v1: quotaSpec,
  v2: quotaSpec,
  migrate: (q) => q,
};

interface Proto {
  state: 'greeting' | 'user' | 'ready';
}
const protoSpec = (withUser: boolean): VersionSpec<Proto> => ({
  init: () => ({ state: 'greeting' }),
  step: (p, line) => {
    if (line.startsWith('QUIT')) return [{ state: 'greeting' }, 'bye'];
    if (p.state === 'greeting')
      return line.startsWith('HELLO')
        ? [{ state: withUser ? 'user' : 'ready' }, withUser ? 'hello, who are you?' : 'hello']
        : [p, 'error: say HELLO first'];
    if (p.state === 'user') {
      const m = /^USER (\S{1,15})/.exec(line);
      return m ? [{ state: 'ready' }, `welcome ${m[1]}`] : [p, 'error: say USER first'];
    }
    return [p, 'ok'];
  },
});

const protocol: EvalCase<Proto, Proto> = {
  name: 'protocol state machine gains a state',
  fixture: 'protocol',
  spec: 'v1-v2.patch.yaml',
  workload: ['HELLO', 'CMD a', 'QUIT', 'HELLO', 'USER bob', 'CMD b', 'QUIT', 'HELLO', 'USER eve', 'CMD c'],
  armBefore: [1, 3],
  v1: protoSpec(false),
  v2: protoSpec(true),
  migrate: (p) => p,
};

const kvSpec = (v: 1 | 2): VersionSpec<Map<string, string>> => ({
  init: () => new Map(),
  step: (kv, line) => {
    const [cmd, key, ...rest] = line.split(' ');
    if (cmd === 'PING') return [kv, 'PONG'];
    if (cmd === 'VERSION') return [kv, `pollserver ${v}`];
    if (cmd === 'COUNT') return [kv, String(kv.size)];
    if (cmd === 'SET') return [new Map(kv).set(key, rest.join(' ')), 'OK'];
    if (cmd === 'GET') return [kv, kv.get(key) ?? (v === 1 ? 'NOT_FOUND' : `NOT_FOUND ${key}`)];
    if (cmd === 'ECHO' && v === 2) return [kv, [key, ...rest].join(' ')];
    return [kv, 'ERR unknown command'];
  },
});

const pollserver: EvalCase<Map<string, string>, Map<string, string>> = {
  name: 'the poll server fixture, v1 to v2 (changed reply, added command)',
  fixture: 'pollserver',
  fixtureRoot: '',
  transport: 'tcp',
  build: ['--update-point', 'serve:loop'],
  workload: [
    'PING',
    'SET a 1',
    'GET a',
    'GET zz',
    'VERSION',
    'ECHO hi',
    'COUNT',
    'SET b 2',
    'GET b',
    'GET yy',
    'VERSION',
    'ECHO yo',
  ],
  armBefore: [2, 6],
  v1: kvSpec(1),
  v2: kvSpec(2),
  migrate: (kv) => kv,
};

/** Every case, in report order; the test suite runs a sample of them. */
export const CASES: EvalCase[] = [permission, stackstruct, split, quota, protocol, pollserver] as EvalCase[];

/** The replies of a correct run: the old version's up to `switchAt`, then the new one's. */
export function expectedReplies(c: EvalCase, switchAt: number): string[] {
  const out: string[] = [];
  let a = c.v1.init();
  for (let i = 0; i < switchAt; i++) {
    const [s, r] = c.v1.step(a, c.workload[i]);
    a = s;
    out.push(r);
  }
  let b = c.migrate(a);
  for (let i = switchAt; i < c.workload.length; i++) {
    const [s, r] = c.v2.step(b, c.workload[i]);
    b = s;
    out.push(r);
  }
  return out;
}

/** A run's replies are correct when some switch position explains all of them. */
export function isCorrect(c: EvalCase, replies: readonly string[]): boolean {
  if (replies.length !== c.workload.length) return false;
  for (let j = 0; j <= c.workload.length; j++) {
    const want = expectedReplies(c, j);
    if (want.every((r, i) => r === replies[i])) return true;
  }
  return false;
}
