import { readFileSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { statusAll, type Status } from '@dsu/control-client';
import type { InventoryView, ProgramView, VersionView } from '@dsu/pipeline';
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

/** `dsu fleet [--program P]`: every host's processes as the appliers last reported them. */
async function fleetBody(opts: { program?: string }, out: Output): Promise<number> {
  const hosts = await GatewayClient.fromEnv().request<InventoryView[]>('GET', '/inventory');
  const rows: ProcessRow[] = hosts.flatMap((h) =>
    h.processes
      .filter((p) => !opts.program || p.program === opts.program)
      .map((p) => ({
        host: h.host,
        pid: p.pid,
        program: p.program,
        version: p.version,
        buildId: p.buildId,
        patches: p.patches.map((id) => ({ id })),
      })),
  );
  if (rows.length === 0)
    out.log(`no processes${opts.program ? ` of '${opts.program}'` : ''} reported by ${hosts.length} host(s)`);
  else
    for (const l of table(
      ['HOST', 'PID', 'PROGRAM', 'VERSION', 'BUILD', 'PATCHES'],
      rows.map((r) => [
        r.host ?? '',
        String(r.pid),
        r.program,
        r.version ?? '-',
        r.buildId,
        patchCell(r.patches),
      ]),
    ))
      out.log(l);
  const seen = hosts.map((h) => ({ host: h.host, seenAt: h.seenAt }));
  out.result({ hosts: seen, processes: rows });
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
