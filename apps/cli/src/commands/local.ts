import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  defaultRunDir,
  readBundle,
  rollbackProcess,
  withControl,
  type RebuiltThread,
} from '@dsu/control-client';
import { buildVersion } from '@dsu/instrument';
import { buildPatch, rebuildPatch, UnsupportedChangeError, type DataSpec } from '@dsu/patch-gen';
import YAML from 'yaml';
import type { Output } from '../output';
import { withSpecLocation } from '../spec-location';
import { signCheckedBundle } from './bundle-signing';

/** `dsu build <src-dir> --out <dir>` */
export async function buildCommand(
  src: string,
  opts: {
    out: string;
    cmd?: string;
    bin?: string;
    updatePoint: string[];
    transaction?: string[];
    frames?: boolean;
    label?: string;
    program?: string;
    slop?: string;
    data?: boolean;
    layoutFrom?: string;
    sandbox?: boolean;
  },
  out: Output,
): Promise<number> {
  let steps = 0;
  const t0 = Date.now();
  const built = await buildVersion(src, opts.out, {
    command: opts.cmd,
    bin: opts.bin,
    updatePoints: opts.updatePoint,
    transactions: opts.transaction,
    version: opts.label,
    program: opts.program,
    slop: opts.slop,
    dataUpdates: opts.data !== false,
    frames: opts.frames !== false,
    layoutFrom: opts.layoutFrom,
    // A user's own code builds with their rights unless they ask for the sandbox.
    sandbox: opts.sandbox
      ? { mode: 'required', hide: [process.env.DSU_HOME || join(homedir(), '.dsu')] }
      : undefined,
    onOutput: (line) => {
      steps++;
      out.progress(`[${steps}] ${line}`);
    },
  });
  out.log(
    `built ${built.program} ${built.version} (build id ${built.buildId}) in ${Date.now() - t0} ms -> ${join(built.outDir, built.executable)}`,
  );
  // An option the build could not honour is said on stderr even with --json (the result lists it too).
  for (const w of built.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
  out.result(built);
  return 0;
}

/**
 * Reads the user's patch.yaml: `types: {'struct conn': {renames: {new: old}, defaults: {field: expr},
 * transform: <C body>, mode: eager|lazy}}`, `globalRenames: {new: old}`, `stateTransformer: <C body>`.
 */
function readSpec(path: string): DataSpec {
  if (!existsSync(path)) throw new Error(`--spec ${path} does not exist`);
  const doc = YAML.parse(readFileSync(path, 'utf8')) as unknown;
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new Error(`${path} must be a mapping with types, globalRenames and stateTransformer`);
  const allowed = new Set(['types', 'globalRenames', 'stateTransformer', 'when', 'frames']);
  for (const k of Object.keys(doc))
    if (!allowed.has(k)) throw new Error(`${path}: unknown key '${k}' (allowed: ${[...allowed].join(', ')})`);
  checkWhen(path, (doc as { when?: unknown }).when);
  checkFrames(path, (doc as { frames?: unknown }).frames);
  return doc as DataSpec;
}

/**
 * patch.yaml's `frames:` — per function: `resume: {old site: new site}`, `locals: {new local:
 * {from: old local} | {init: C expression}}` (libs/frame-map checks the names against the builds).
 */
function checkFrames(path: string, frames: unknown): void {
  if (frames === undefined) return;
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const bad = (what: string) => new Error(`${path}: frames.${what}`);
  if (!isMap(frames)) throw new Error(`${path}: frames must map function names to {resume, locals}`);
  for (const [fn, spec] of Object.entries(frames)) {
    if (!isMap(spec)) throw bad(`${fn} must be a mapping with resume and locals`);
    for (const k of Object.keys(spec)) if (k !== 'resume' && k !== 'locals') throw bad(`${fn}.${k} is not known (use resume, locals)`);
    if (spec.resume !== undefined && (!isMap(spec.resume) || !Object.values(spec.resume).every((v) => typeof v === 'string' && v)))
      throw bad(`${fn}.resume must map old sites to new sites, e.g. { "call:handle#0": "call:handle_request#0" }`);
    if (spec.locals === undefined) continue;
    if (!isMap(spec.locals)) throw bad(`${fn}.locals must map new locals to {from: old local} or {init: C expression}`);
    for (const [local, v] of Object.entries(spec.locals)) {
      const ok =
        isMap(v) &&
        Object.keys(v).every((k) => k === 'from' || k === 'init') &&
        Object.values(v).every((x) => typeof x === 'string' && x.trim());
      if (!ok) throw bad(`${fn}.locals.${local} must be {from: <old local>} or {init: <C expression>}`);
    }
  }
}

/** patch.yaml's `when:` must be `{points: [..], inactive: [..], predicate: 'C expr', deadlineMs: N}`. */
function checkWhen(path: string, when: unknown): void {
  if (when === undefined) return;
  const bad = (what: string) => new Error(`${path}: when.${what}`);
  if (typeof when !== 'object' || when === null || Array.isArray(when))
    throw new Error(`${path}: when must be a mapping with points, inactive, predicate and deadlineMs`);
  const w = when as Record<string, unknown>;
  for (const k of Object.keys(w))
    if (!['points', 'inactive', 'predicate', 'deadlineMs'].includes(k))
      throw bad(`${k} is not a when-condition (use points, inactive, predicate, deadlineMs)`);
  for (const k of ['points', 'inactive'])
    if (
      w[k] !== undefined &&
      (!Array.isArray(w[k]) || !(w[k] as unknown[]).every((x) => typeof x === 'string' && x))
    )
      throw bad(`${k} must be a list of names`);
  if (w.predicate !== undefined && (typeof w.predicate !== 'string' || !w.predicate.trim()))
    throw bad('predicate must be a C expression, e.g. "conn_count == 0"');
  if (w.deadlineMs !== undefined && !(Number.isInteger(w.deadlineMs) && (w.deadlineMs as number) > 0))
    throw bad('deadlineMs must be a positive number of milliseconds');
}

/** `dsu patch <old-build> <new-build> --out <dir>`, or `dsu patch --rebuild <dir>` after hand edits. */
export async function patchCommand(
  from: string | undefined,
  to: string | undefined,
  opts: { out?: string; rebuild?: string; spec?: string; transform?: string },
  out: Output,
): Promise<number> {
  if (opts.transform && opts.transform !== 'eager' && opts.transform !== 'lazy') {
    out.fail({ code: 'usage', error: `--transform must be eager or lazy, not '${opts.transform}'` });
    return 2;
  }
  if (opts.rebuild ? from || to || opts.out : !(from && to && opts.out)) {
    out.fail({
      code: 'usage',
      error:
        'use either `dsu patch <old-build-dir> <new-build-dir> --out <patch-dir>` or `dsu patch --rebuild <patch-dir>`',
    });
    return 2;
  }
  try {
    const { manifest, dir } = opts.rebuild
      ? { manifest: await rebuildPatch(opts.rebuild), dir: opts.rebuild }
      : await buildPatch(from as string, to as string, opts.out as string, {
          spec: opts.spec ? withSpecLocation(opts.spec, () => readSpec(opts.spec as string)) : undefined,
          transform: opts.transform as 'eager' | 'lazy' | undefined,
          onPhase: (phase) => out.progress(`patch: ${phase}`),
        });
    for (const f of manifest.functions)
      out.log(`  ${f.change.padEnd(9)} ${f.key}${f.reasons?.length ? `  (${f.reasons.join('; ')})` : ''}`);
    for (const t of manifest.types)
      out.log(
        `  type      ${t.name}: ${t.oldSize} -> ${t.newSize} bytes of ${t.capacity} reserved, ${t.mode}`,
      );
    for (const g of manifest.globals)
      out.log(`  global    ${g.key}: ${g.change}${g.note ? ` (${g.note})` : ''}`);
    for (const n of manifest.notes ?? []) out.log(`  note: ${n}`);
    out.log(
      `patch ${manifest.patchId.slice(0, 16)} (${manifest.from.version} -> ${manifest.to.version}) written to ${dir}`,
    );
    out.result({
      patchId: manifest.patchId,
      dir,
      program: manifest.program,
      from: manifest.from,
      to: manifest.to,
      functions: manifest.functions,
      types: manifest.types,
      globals: manifest.globals,
      notes: manifest.notes ?? [],
    });
    return 0;
  } catch (err) {
    if (err instanceof UnsupportedChangeError) {
      // The reasons are listed by fail(); the message's own copy of them would print them twice.
      out.fail({ code: 'unsupported-change', error: err.message.split('\n')[0], reasons: err.reasons });
      return 1;
    }
    throw err;
  }
}

/**
 * `dsu check <patch-dir>`: for now the bundle's integrity (schema, hash, id) and that it changes
 * something; the safety analysis of a later issue deepens it. Writes verdict.json and, when
 * approved, signature.json signed with the local key (docs/bundle-signing.md).
 */
export async function checkCommand(dir: string, out: Output): Promise<number> {
  // The same rules as the checker service, so the command and the pipeline agree on a verdict
  // (loaded on use, like the other pipeline code, to keep the CLI's start-up light).
  const { checkBundle } = await import('@dsu/pipeline');
  const { patchId, verdict, findings, updatePoints } = checkBundle(dir);
  const result = { verdict, findings, updatePoints, patchId, checkedAt: new Date().toISOString() };
  if (patchId) writeFileSync(join(dir, 'verdict.json'), JSON.stringify(result, null, 2) + '\n');
  // an approved bundle is signed with the local key, as the checker service signs (dsu apply verifies)
  const signature = patchId ? await signCheckedBundle(dir, verdict === 'approved', out) : null;
  for (const f of findings)
    out.log(`${f.severity}: ${f.rule}${f.location ? ` (${f.location})` : ''}: ${f.message}`);
  if (patchId) for (const line of await frameMapLinesOf(dir)) out.log(`frames: ${line}`);
  if (updatePoints.allowed.length) out.log(`update points allowed: ${updatePoints.allowed.join(', ')}`);
  for (const d of updatePoints.denied) out.log(`update point denied: ${d.name} (${d.rules.join(', ')})`);
  out.log(`verdict: ${verdict}`);
  out.result({ ...result, signature });
  return verdict === 'approved' ? 0 : 1;
}

/**
 * The frame maps of a bundle that checkBundle could read, one describeFrameMap line each: how the
 * active frames of each replaced function are rebuilt (ABI.md §11). None when the manifest has none.
 */
async function frameMapLinesOf(dir: string): Promise<string[]> {
  const { frameMapLines } = await import('@dsu/analysis');
  try {
    return frameMapLines(readBundle(dir).manifest);
  } catch {
    return []; // a bundle that does not read is already a bundle-integrity finding
  }
}

/** Prints an update's outcome as lines (apply and rollback), with the threads whose frames were rebuilt. */
export function describeOutcome(
  r: { outcome: string; pauseUs: number; updatePoint: string | null; reasons: string[]; frames?: RebuiltThread[] },
  out: Output,
  what: string,
): void {
  if (r.outcome === 'applied') {
    out.log(`${what}: applied at update point '${r.updatePoint}', threads paused ${r.pauseUs} us`);
    for (const t of r.frames ?? []) out.log(describeRebuild(t));
  } else {
    out.log(`${what}: ${r.outcome}`);
    for (const reason of r.reasons) out.log(`  - ${reason}`);
    if (r.outcome === 'timeout')
      out.log(
        '  (the program keeps running its current code; `dsu stacks --pid <pid>` shows where its threads are)',
      );
  }
}

/**
 * One thread's rebuilt stack, outermost frame first as the runtime lists it, and how long the
 * unwind and the rebuild took (the wait before the unwind is the thread reaching its next stop).
 */
export function describeRebuild(t: RebuiltThread): string {
  if (!t.done) return `thread ${t.tid}: frames not rebuilt yet when the runtime replied (it waits up to 1 s)`;
  const took = (t.unwindUs ?? 0) + (t.rebuildUs ?? 0);
  return `thread ${t.tid}: rebuilt ${(t.frames ?? []).join(' <- ')} in ${took} us (after waiting ${t.waitUs ?? 0} us for it to stop)`;
}

/** `dsu rollback --pid <pid>` */
export async function rollbackCommand(
  opts: { pid: number; timeoutMs: number; runDir: string },
  out: Output,
): Promise<number> {
  const r = await rollbackProcess(opts.pid, opts.runDir, opts.timeoutMs);
  describeOutcome(r, out, `rollback on pid ${opts.pid}`);
  out.result({
    outcome: r.outcome,
    pauseUs: r.pauseUs,
    updatePoint: r.updatePoint,
    reasons: r.reasons,
    patchId: r.patch ?? null,
    pid: opts.pid,
    buildId: r.buildId,
    ...(r.frames ? { frames: r.frames } : {}),
  });
  return r.outcome === 'applied' ? 0 : 1;
}

/** `dsu status --pid <pid>` */
export async function statusCommand(opts: { pid: number; runDir: string }, out: Output): Promise<number> {
  const s = await withControl(opts.pid, opts.runDir, (c) => c.status());
  out.log(`${s.program} pid ${s.pid}, build ${s.buildId}`);
  out.log(
    `threads: ${s.threads.map((t) => `${t.tid} ${t.name} (${t.state}${t.lastPoint ? ` at ${t.lastPoint}` : ''})`).join(', ')}`,
  );
  out.log(`update points seen: ${s.updatePoints.join(', ') || 'none yet'}`);
  for (const p of s.patches)
    out.log(
      `patch ${p.id.slice(0, 16)} ${p.fromBuildId} -> ${p.toBuildId} at '${p.updatePoint}', pause ${p.pauseUs} us`,
    );
  out.result(s);
  return 0;
}

/** `dsu stacks --pid <pid>`: where each thread is, by function key (why an update waits). */
export async function stacksCommand(opts: { pid: number; runDir: string }, out: Output): Promise<number> {
  const s = await withControl(opts.pid, opts.runDir, (c) => c.stacks());
  for (const t of s.threads) {
    out.log(`thread ${t.tid} '${t.name}' ${t.state}${t.lastPoint ? ` at ${t.lastPoint}` : ''}`);
    if (!t.frames) out.log(`  (${t.note ?? 'no stack captured'})`);
    for (const f of t.frames ?? []) out.log(`  ${f.pc} ${f.function ?? f.symbol ?? '?'}`);
  }
  out.result(s);
  return 0;
}

export { defaultRunDir };
