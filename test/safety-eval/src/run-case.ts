import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { checkSafety, POINT_RULES, updatePointSites, type PointRule } from '@dsu/analysis';
import type { ProgramModel } from '@dsu/c-frontend';
import { ControlClient, readBundle, socketPath } from '@dsu/control-client';
import type { PatchManifest } from '@dsu/patch-format';
import { isCorrect, type EvalCase } from './cases';
import { LineProcess } from './line-process';
import { TcpLineProcess } from './tcp-line-process';

const ROOT = resolve(__dirname, '../../..');
const DSU = join(ROOT, 'apps/cli/bin/dsu.js');
const run = promisify(execFile);

/** Runs the dsu command; throws with its output when it fails. */
async function dsu(args: string[]): Promise<void> {
  try {
    await run(process.execPath, [DSU, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`dsu ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

export interface BuiltCase {
  exe: string;
  bundle: string;
  from: ProgramModel;
  to: ProgramModel;
  manifest: PatchManifest;
}

/** Builds both versions with dsu-cc and generates the patch between them. */
export async function buildCase(c: EvalCase, work: string): Promise<BuiltCase> {
  const src = join(ROOT, 'test/fixtures', c.fixtureRoot ?? 'safety', c.fixture);
  const [v1, v2, bundle] = ['v1', 'v2', 'patch'].map((d) => join(work, c.fixture, d));
  await dsu(['build', join(src, 'v1'), '--out', v1, ...(c.build ?? [])]);
  await dsu(['build', join(src, 'v2'), '--out', v2, '--layout-from', v1, ...(c.build ?? [])]);
  await dsu(['patch', v1, v2, '--out', bundle, ...(c.spec ? ['--spec', join(src, c.spec)] : [])]);
  const info = JSON.parse(readFileSync(join(v1, 'build.json'), 'utf8')) as { executable: string };
  const model = (f: string) => JSON.parse(readFileSync(join(bundle, 'models', f), 'utf8')) as ProgramModel;
  return {
    exe: join(v1, info.executable),
    bundle,
    from: model('from.json'),
    to: model('to.json'),
    manifest: readBundle(bundle).manifest,
  };
}

/** The update points of the running version, by name. */
export function pointsOf(b: BuiltCase): string[] {
  return [...updatePointSites(b.from).keys()].sort();
}

/** A copy of the bundle that the runtime may apply only at `point` (its descriptor lists only that point). */
export async function forcedBundle(b: BuiltCase, point: string, work: string): Promise<string> {
  const dir = join(work, `forced-${point.replace(/[^A-Za-z0-9_]/g, '_')}`);
  cpSync(b.bundle, dir, { recursive: true });
  const patchC = join(dir, 'patch.c');
  const text = readFileSync(patchC, 'utf8')
    .replace(
      /static const char \*const points\[\] = \{[^}]*\};/,
      `static const char *const points[] = { ${JSON.stringify(point)} };`,
    )
    .replace(/(\d+u, fns, )\d+u, points \};/, '$11u, points };');
  writeFileSync(patchC, text);
  await dsu(['patch', '--rebuild', dir]);
  return dir;
}

export interface Trial {
  point: string;
  armBefore: number;
  /** The update happened (at the forced point). */
  applied: boolean;
  correct: boolean;
  replies: (string | undefined)[];
  detail: string;
}

/**
 * One trial: runs the old version under the workload with the runtime's own checks off, arms the
 * update (forced at `point`) before request `armBefore`, and judges the replies against the
 * specification (any crash, missing or unexplained reply is an error).
 */
export async function forcedTrial(
  b: BuiltCase,
  c: EvalCase,
  bundle: string,
  point: string,
  armBefore: number,
  runDir: string,
): Promise<Trial> {
  mkdirSync(runDir, { recursive: true });
  const env = {
    DSU_RUN_DIR: runDir,
    DSU_UNSAFE_SKIP_CHECKS: 'activeness,transactions',
    // the stdio programs block in fgets, never in a wrapped call: start the control thread before main
    DSU_CONTROL: 'eager',
  };
  const p = c.transport === 'tcp' ? await TcpLineProcess.start(b.exe, env) : new LineProcess(b.exe, env);
  const replies: (string | undefined)[] = [];
  let commit: Promise<{ outcome?: string; reasons?: string[] }> | undefined;
  let control: ControlClient | undefined;
  try {
    for (let i = 0; i < c.workload.length; i++) {
      if (i === armBefore) {
        const { manifest, soPath } = readBundle(bundle);
        // the eager control thread opens its socket on its own time: wait for it
        for (let t = 0; t < 100 && !existsSync(socketPath(p.pid, runDir)); t++)
          await new Promise((r) => setTimeout(r, 50));
        control = await ControlClient.connect(p.pid, runDir).catch((e: Error) => {
          // Say how the program ended, if it did: the trial cannot go on either way.
          const how = p.exit ? `; it exited (${p.exit.code ?? p.exit.signal}): ${p.stderr.slice(-300)}` : '';
          throw new Error(`${e.message}${how}`);
        });
        const staged = await control.stage(soPath, manifest.soSha256, manifest.patchId);
        if (staged.ok !== true) throw new Error(`STAGE refused: ${JSON.stringify(staged)}`);
        commit = control.commit(20_000).catch((e: Error) => ({ outcome: 'failed', reasons: [e.message] }));
        await new Promise((r) => setTimeout(r, 200)); // the coordinator arms before the request arrives
      }
      replies.push(await p.request(c.workload[i]));
    }
    const result = commit
      ? await Promise.race([commit, new Promise<undefined>((r) => setTimeout(() => r(undefined), 3000))])
      : undefined;
    const applied = result?.outcome === 'applied';
    const clean = !p.exit && replies.every((r) => r !== undefined);
    return {
      point,
      armBefore,
      applied,
      correct: clean && isCorrect(c, replies as string[]),
      replies,
      detail: p.exit
        ? `exited (${p.exit.code ?? p.exit.signal}): ${p.stderr.slice(-300)}`
        : (result?.outcome ?? 'no update'),
    };
  } finally {
    await p.stop();
    control?.close();
  }
}

/** Per check, whether it allows `point` for this patch (the combined check is every point rule). */
export function judgedBy(b: BuiltCase, point: string): Record<PointRule | 'combined', boolean> {
  const input = { from: b.from, to: b.to, manifest: b.manifest };
  const allows = (rules: PointRule[]) => checkSafety(input, rules).updatePoints.allowed.includes(point);
  const rules = Object.keys(POINT_RULES) as PointRule[];
  return {
    ...(Object.fromEntries(rules.map((r) => [r, allows([r])])) as Record<PointRule, boolean>),
    combined: allows(rules),
  };
}
