// The live-update demo: builds the sample poll server v1 and v2 with dsu-cc, starts v1, puts it
// under a loopback client load, generates + checks + applies the v1->v2 patch while the load
// runs, and prints each step, the pause and the client's count of failed and wrong replies.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { converse } from '../test/e2e/src/support/line-client';
import { startLoad } from '../test/e2e/src/support/load-client';

const root = resolve(__dirname, '..');
const work = join(root, 'tmp', 'demo');
const runDir = join(work, 'run');
const sample = join(root, 'test', 'fixtures', 'pollserver');

function dsu(...args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, [join(root, 'apps/cli/bin/dsu.js'), ...args, '--json'], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop() as string);
}

function step(what: string, detail = ''): void {
  console.log(`${what.padEnd(10)} ${detail}`);
}

async function main(): Promise<void> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  for (const v of ['v1', 'v2']) {
    const b = dsu('build', join(sample, v), '--out', join(work, v), '--label', v, '--update-point', 'serve:loop');
    step('build', `pollserver ${v} with dsu-cc, build id ${b.buildId}`);
  }
  const p = dsu('patch', join(work, 'v1'), join(work, 'v2'), '--out', join(work, 'v1-v2'));
  step('patch', `${String(p.patchId).slice(0, 16)}: ${(p.functions as { key: string; change: string }[]).map((f) => `${f.change} ${f.key}`).join(', ')}`);
  step('check', `verdict ${dsu('check', join(work, 'v1-v2')).verdict}`);

  const server = spawn(join(work, 'v1', 'pollserver'), ['0'], { env: { ...process.env, DSU_RUN_DIR: runDir }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((res, rej) => {
    server.stdout.once('data', (d: Buffer) => res(Number(/listening (\d+)/.exec(d.toString())?.[1])));
    server.once('exit', () => rej(new Error('the sample server exited before listening')));
  });
  try {
    step('run', `pollserver v1 pid ${server.pid} on 127.0.0.1:${port}; ${(await converse(port, ['VERSION', 'GET demo'])).join(', ')}`);
    const load = startLoad({
      port,
      clients: 8,
      durationMs: 4000,
      script: [
        { send: 'SET k{c} v{i}', expect: 'OK' },
        { send: 'GET k{c}', expect: { regex: 'v\\d+' } },
        { send: 'VERSION', expect: ['pollserver 1', 'pollserver 2'] },
        { send: 'GET missing', expect: ['NOT_FOUND', 'NOT_FOUND missing'] },
      ],
    });
    step('load', '8 clients on loopback for 4 s');
    await new Promise((r) => setTimeout(r, 1500));
    const a = dsu('apply', join(work, 'v1-v2'), '--pid', String(server.pid), '--run-dir', runDir, '--timeout-ms', '5000');
    const paused = a.pauseUs === 0 ? 'no thread had to wait (it was inside a blocking call)' : `threads paused ${a.pauseUs} us`;
    step('apply', `${a.outcome} at update point '${a.updatePoint}', ${paused}; staging ${a.stageMs} ms`);
    const r = await load.done;
    step('load', `${r.ok} replies ok, ${r.failed} failed, ${r.wrong} wrong; p99 latency ${r.latencyMs.p99.toFixed(2)} ms`);
    step('after', `same pid ${server.pid}; ${(await converse(port, ['VERSION', 'GET demo', 'ECHO live'])).join(', ')}`);
    if (a.outcome !== 'applied' || r.failed > 0 || r.wrong > 0) process.exitCode = 1;
  } finally {
    server.kill('SIGTERM');
  }
}

main().catch((err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});
