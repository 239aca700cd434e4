import { readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { statusAll, type Status } from '@dsu/control-client';
import type { InventoryView, ProgramView, RolloutView, VersionView } from '@dsu/pipeline';
import type { Output } from '../output';
import { table } from '../table';
import { GatewayClient } from './gateway-client';
import { guarded } from './remote';

// Listings a new user reaches for first: `dsu ps` (this host's processes, from their control
// sockets), `dsu fleet` (every host's, from the registry) and `dsu programs` (the registry).

/** One process as `dsu ps --json` and `dsu fleet --json` print it: no protocol fields. */
export interface ProcessRow {
  host?: string;
  pid: number;
  program: string;
  /** The version label when known (the registry's, or the build.json beside the executable). */
  version: string | null;
  buildId: string;
  patches: { id: string; fromBuildId?: string; toBuildId?: string; updatePoint?: string }[];
  /** `dsu fleet`: stale (its host is silent), failed (its program's latest rollout did not update it), patched, or skipped (no patch). */
  state?: 'stale' | 'failed' | 'patched' | 'skipped';
  /** `failed`: why, as the rollout recorded it. */
  reason?: string;
}

const short = (id: string) => id.slice(0, 16);
const patchCell = (p: ProcessRow['patches']) =>
  p.length === 0 ? '-' : `${p.length}: ${p.map((x) => short(x.id)).join(', ')}`;

/**
 * The version label of a process started from a `dsu build` directory: its build.json, beside the
 * executable, when the process still runs that build (no patch applied). Null otherwise.
 */
function localVersion(s: Status): string | null {
  if (s.patches.length > 0) return null;
  try {
    const info = JSON.parse(
      readFileSync(join(dirname(readlinkSync(`/proc/${s.pid}/exe`)), 'build.json'), 'utf8'),
    );
    return info.buildId === s.buildId && typeof info.version === 'string' ? info.version : null;
  } catch {
    return null; // not a dsu build directory (dsu install, a copy): no label known here
  }
}

/** `dsu ps`: this user's DSU-enabled processes in the run directory, as a table. */
export async function psCommand(opts: { runDir: string }, out: Output): Promise<number> {
  const procs = (await statusAll(opts.runDir)).sort((a, b) => a.pid - b.pid);
  const rows: ProcessRow[] = procs.map((s) => ({
    pid: s.pid,
    program: s.program,
    version: localVersion(s),
    buildId: s.buildId,
    patches: s.patches.map((p) => ({
      id: p.id,
      fromBuildId: p.fromBuildId,
      toBuildId: p.toBuildId,
      updatePoint: p.updatePoint,
    })),
  }));
  if (rows.length === 0) out.log(`no DSU-enabled processes in ${opts.runDir}`);
  else
    for (const l of table(
      ['PID', 'PROGRAM', 'VERSION', 'BUILD', 'PATCHES'],
      rows.map((r) => [String(r.pid), r.program, r.version ?? '-', r.buildId, patchCell(r.patches)]),
    ))
      out.log(l);
  out.result(rows);
  return 0;
}

/**
 * `dsu fleet [--program P] [--build B] [--not-on V]`: every host's processes as the appliers last
 * reported them, each with its state (stale, failed with the reason its program's latest rollout
 * gave, patched, skipped) and a summary line of the counts.
 */
async function fleetBody(
  opts: { program?: string; build?: string; notOn?: string },
  out: Output,
): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const hosts = await gw.request<InventoryView[]>('GET', '/inventory');
  // The latest rollout of each program listed says why a process it targeted was not updated.
  const programs = new Set(hosts.flatMap((h) => h.processes.map((p) => p.program)));
  if (opts.program) for (const p of programs) if (p !== opts.program) programs.delete(p);
  const latest = new Map<string, RolloutView>();
  for (const program of programs) {
    const [r] = await gw.request<RolloutView[]>(
      'GET',
      `/rollouts?program=${encodeURIComponent(program)}&newest=1`,
    );
    if (r) latest.set(program, r);
  }
  const failure = (program: string, host: string, pid: number): string | undefined => {
    const r = latest.get(program);
    const t = r?.targets.find((x) => x.host === host && x.pid === pid);
    const res = r?.results.find((x) => x.host === host && x.pid === pid);
    if (res && res.outcome !== 'applied')
      return `${res.outcome}: ${res.reasons.join('; ') || 'no reason given'} (rollout ${r?.rolloutId.slice(0, 8)} to ${r?.version})`;
    if (t?.state === 'failed')
      return `${t.reason ?? 'failed'} (rollout ${r?.rolloutId.slice(0, 8)} to ${r?.version})`;
    return undefined;
  };
  const rows: ProcessRow[] = hosts.flatMap((h) =>
    h.processes
      .filter((p) => !opts.program || p.program === opts.program)
      .filter((p) => !opts.build || p.buildId.startsWith(opts.build))
      .filter((p) => !opts.notOn || p.version !== opts.notOn)
      .map((p) => {
        const reason = h.stale ? undefined : failure(p.program, h.host, p.pid);
        const state = h.stale ? 'stale' : reason ? 'failed' : p.patches.length ? 'patched' : 'skipped';
        return {
          host: h.host,
          pid: p.pid,
          program: p.program,
          version: p.version,
          buildId: p.buildId,
          patches: p.patches.map((id) => ({ id })),
          state,
          ...(reason ? { reason } : {}),
        } satisfies ProcessRow;
      }),
  );
  const count = (s: ProcessRow['state']) => rows.filter((r) => r.state === s).length;
  const summary = {
    patched: count('patched'),
    skipped: count('skipped'),
    failed: count('failed'),
    stale: count('stale'),
  };
  if (rows.length === 0)
    out.log(`no processes${opts.program ? ` of '${opts.program}'` : ''} reported by ${hosts.length} host(s)`);
  else {
    for (const l of table(
      ['HOST', 'PID', 'PROGRAM', 'VERSION', 'BUILD', 'STATE', 'PATCHES'],
      rows.map((r) => [
        r.host ?? '',
        String(r.pid),
        r.program,
        r.version ?? '-',
        r.buildId,
        r.state ?? '',
        patchCell(r.patches),
      ]),
    ))
      out.log(l);
    for (const r of rows) if (r.reason) out.log(`pid ${r.pid} on ${r.host}: ${r.reason}`);
    out.log(
      `${rows.length} processes: ${summary.patched} patched, ${summary.skipped} skipped, ${summary.failed} failed, ${summary.stale} stale`,
    );
  }
  const seen = hosts.map((h) => ({ host: h.host, seenAt: h.seenAt, stale: h.stale }));
  out.result({ summary, hosts: seen, processes: rows });
  return 0;
}

/** `dsu programs`: the registered programs, each with its versions and the latest built one. */
async function programsBody(out: Output): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const programs = await gw.request<ProgramView[]>('GET', '/programs');
  const rows = await Promise.all(
    programs.map(async (p) => {
      const versions = await gw.request<VersionView[]>(
        'GET',
        `/programs/${encodeURIComponent(p.id)}/versions`,
      );
      const built = versions.filter((v) => v.status === 'built');
      return {
        id: p.id,
        description: p.description,
        versions: versions.length,
        latest: versions.at(-1)?.version ?? null,
        latestBuilt: built.at(-1)?.version ?? null,
      };
    }),
  );
  if (rows.length === 0) out.log("no programs registered yet ('dsu submit' registers one)");
  else
    for (const l of table(
      ['PROGRAM', 'VERSIONS', 'LATEST', 'LATEST BUILT', 'DESCRIPTION'],
      rows.map((r) => [r.id, String(r.versions), r.latest ?? '-', r.latestBuilt ?? '-', r.description]),
    ))
      out.log(l);
  out.result(rows);
  return 0;
}

export const fleetCommand = guarded(fleetBody);
export const programsCommand = guarded(programsBody);
