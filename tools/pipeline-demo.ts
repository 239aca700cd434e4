// The main demo: the update pipeline on the embedded default. `dsu up` runs gateway, compiler,
// patcher, checker and applier in one process (in-process bus, SQLite under a fresh DSU_HOME).
// The sample poll server v1 is submitted, built by the compiler, installed and started; under a
// loopback client load v2 is submitted (compile -> patch -> check), then rolled out, and the
// applier moves the running process to v2. Prints each step, the pause and the failed requests.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { converse } from '../test/e2e/src/support/line-client';
import { startLoad } from '../test/e2e/src/support/load-client';

const root = resolve(__dirname, '..');
const cli = join(root, 'apps/cli/bin/dsu.js');
const work = join(root, 'tmp', 'pipeline-demo');
const home = join(work, 'home');
const runDir = join(work, 'run');
const sample = join(root, 'test', 'fixtures', 'pollserver');
const env = {
  ...process.env,
  DSU_HOME: home,
  DSU_RUN_DIR: runDir,
  DSU_HOST_ID: 'demo-host',
  DSU_HEARTBEAT_MS: '500',
};
delete env.KAFKA_BROKERS; // the embedded default: in-process bus and SQLite
delete env.DATABASE_URL;

function dsu(gateway: string, ...args: string[]): Promise<Record<string, unknown>> {
  return new Promise((res, rej) =>
    execFile(
      process.execPath,
      [cli, ...args, '--json'],
      { env: { ...env, DSU_GATEWAY: gateway }, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          const json = JSON.parse(line) as Record<string, unknown>;
          if (err && !('build' in json) && !('rolloutId' in json))
            rej(new Error(`dsu ${args[0]}: ${JSON.stringify(json)}`));
          else res(json);
        } catch {
          rej(new Error(`dsu ${args.join(' ')} failed: ${stderr || stdout}`));
        }
      },
    ),
  );
}

function step(what: string, detail = ''): void {
  console.log(`${what.padEnd(10)} ${detail}`);
}

async function startUp(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [cli, 'up', '--port', '0', '--json'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  child.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
  const url = await new Promise<string>((res, rej) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      if (l.startsWith('{')) res((JSON.parse(l) as { url: string }).url);
    });
    child.once('exit', (code) =>
      rej(new Error(`dsu up exited (${code}) before listening:\n${logs.join('').slice(-2000)}`)),
    );
  });
  return { child, url };
}

/** The applier's heartbeat has to list the process before a rollout can target it. */
async function waitForInventory(url: string, pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    // The admin token `dsu up` wrote for this user (the dsu commands find it by themselves).
    const token = readFileSync(join(home, 'token'), 'utf8').trim();
    const res = await fetch(`${url}/inventory`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET /inventory: HTTP ${res.status} ${await res.text()}`);
    const hosts = (await res.json()) as { processes: { pid: number }[] }[];
    if (hosts.some((h) => h.processes.some((p) => p.pid === pid))) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the applier's inventory never listed pid ${pid}`);
}

async function main(): Promise<void> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const t0 = Date.now();
  const up = await startUp();
  let server: ChildProcess | undefined;
  try {
    step(
      'up',
      `dsu up: gateway, compiler, patcher, checker, applier in one process at ${up.url} (in-process bus, SQLite in ${home})`,
    );
    const s1 = (await dsu(
      up.url,
      'submit',
      join(sample, 'v1'),
      '--program',
      'pollserver',
      '--version',
      'v1',
      '--update-point',
      'serve:loop',
    )) as {
      build: { status: string; buildId: string };
    };
    if (s1.build.status !== 'built') throw new Error(`v1 did not build: ${JSON.stringify(s1)}`);
    step('compile', `pollserver v1 built by the compiler service with dsu-cc, build id ${s1.build.buildId}`);
    await dsu(up.url, 'install', 'pollserver', 'v1', '--out', join(work, 'installed-v1'));
    server = spawn(join(work, 'installed-v1', 'pollserver'), ['0'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const port = await new Promise<number>((res, rej) => {
      server?.stdout?.once('data', (d: Buffer) => res(Number(/listening (\d+)/.exec(d.toString())?.[1])));
      server?.once('exit', () => rej(new Error('the sample server exited before listening')));
    });
    await waitForInventory(up.url, server.pid as number);
    step(
      'run',
      `installed v1 and started it: pid ${server.pid} on 127.0.0.1:${port}; ${(await converse(port, ['VERSION', 'GET demo'])).join(', ')}`,
    );

    const load = startLoad({
      port,
      clients: 8,
      durationMs: 120_000,
      script: [
        { send: 'SET k{c} v{i}', expect: 'OK' },
        { send: 'GET k{c}', expect: { regex: 'v\\d+' } },
        { send: 'VERSION', expect: ['pollserver 1', 'pollserver 2'] },
        { send: 'GET missing', expect: ['NOT_FOUND', 'NOT_FOUND missing'] },
      ],
    });
    step('load', '8 clients on loopback until the update is done');
    const ts = Date.now();
    const s2 = (await dsu(
      up.url,
      'submit',
      join(sample, 'v2'),
      '--program',
      'pollserver',
      '--version',
      'v2',
      '--update-point',
      'serve:loop',
    )) as {
      build: { status: string; buildId: string };
      patch: { id: string; verdict: string } | null;
    };
    if (s2.build.status !== 'built' || !s2.patch)
      throw new Error(`v2 did not build or got no patch: ${JSON.stringify(s2)}`);
    step('compile', `pollserver v2 built, build id ${s2.build.buildId}`);
    step('patch', `v1 -> v2 generated by the patcher service: ${s2.patch.id.slice(0, 16)}`);
    step(
      'check',
      `checker verdict ${s2.patch.verdict}${s2.patch.verdict === 'approved' ? ', bundle signed (Ed25519)' : ''}; submit took ${Date.now() - ts} ms`,
    );
    const r = (await dsu(up.url, 'rollout', 'pollserver', '--to', 'v2')) as {
      results: { host: string; pid: number; outcome: string; pauseUs: number; updatePoint: string }[];
    };
    for (const x of r.results) {
      const paused =
        x.pauseUs === 0
          ? 'no thread had to wait (it was inside a blocking call)'
          : `threads paused ${x.pauseUs} us`;
      step(
        'apply',
        `applier on ${x.host}: pid ${x.pid} ${x.outcome} at update point '${x.updatePoint}', ${paused}`,
      );
    }
    await new Promise((res) => setTimeout(res, 1000)); // a second of v2 under load
    const lr = await load.stop();
    step(
      'load',
      `${lr.ok} replies ok, ${lr.failed} failed, ${lr.wrong} wrong; p99 latency ${lr.latencyMs.p99.toFixed(2)} ms`,
    );
    step(
      'after',
      `same pid ${server.pid}; ${(await converse(port, ['VERSION', 'GET demo', 'ECHO live'])).join(', ')}`,
    );
    step(
      'registry',
      `every step is in ${join(home, 'dsu.sqlite')}; 'DSU_HOME=${home} DSU_GATEWAY=${up.url} dsu rollouts --json' (the token dsu up wrote is in DSU_HOME) lists the rollout (${Date.now() - t0} ms in all)`,
    );
    const applied = r.results.length > 0 && r.results.every((x) => x.outcome === 'applied');
    if (!applied || lr.failed > 0 || lr.wrong > 0) process.exitCode = 1;
  } finally {
    server?.kill('SIGTERM');
    up.child.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
