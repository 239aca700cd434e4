import type { InventoryView, VersionView } from '@dsu/pipeline';
import { CliError } from '../errors';
import type { Output } from '../output';
import { table } from '../table';
import { GatewayClient, pollUntil } from './gateway-client';
import { guarded } from './remote';

/** One process as `dsu fleet verify` judged it. */
export interface VerifiedProcess {
  host: string;
  pid: number;
  buildId: string;
  version: string | null;
  onTarget: boolean;
}

/**
 * `dsu fleet verify <program> --to <version>`: proves that every live process of the program runs
 * the version's code, as each process's own runtime says it. The appliers' heartbeats are each
 * process's STATUS (its build, or the target build of its last patch); only heartbeats sent after
 * this command started count, so the answer is the runtimes' answer now, not a stale inventory.
 * Exit 0 only when every process of the program on every host runs the target build; a host that
 * does not report within the timeout fails the proof (it is named), as does no process at all.
 */
async function fleetVerifyBody(
  program: string,
  opts: { to: string; timeoutMs?: string },
  out: Output,
): Promise<number> {
  const gw = GatewayClient.fromEnv();
  const target = await gw.request<VersionView>(
    'GET',
    `/programs/${encodeURIComponent(program)}/versions/${encodeURIComponent(opts.to)}`,
  );
  if (!target.buildId)
    throw new CliError(
      'version-not-built',
      `version '${opts.to}' of '${program}' is ${target.status}, not built: there is no code to verify against`,
    );
  const timeoutMs = Number(opts.timeoutMs ?? 60_000);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new CliError(
      'usage',
      `--timeout-ms must be a positive number of milliseconds, not '${opts.timeoutMs}'`,
    );
  const since = Date.now();
  // Every host that reported before is waited for until it reports again, after `since`.
  const fresh = (h: InventoryView) => Date.parse(h.seenAt) > since;
  let hosts: InventoryView[] = [];
  out.progress(`waiting for every host's next heartbeat`);
  try {
    await pollUntil(
      'every host to report after this command started',
      timeoutMs,
      async () => {
        hosts = await gw.request<InventoryView[]>('GET', '/inventory');
        return hosts.every(fresh) ? true : undefined;
      },
      250,
    );
  } catch (err) {
    if (!(err instanceof CliError) || err.code !== 'timeout') throw err;
  }
  const stale = hosts.filter((h) => !fresh(h)).map((h) => ({ host: h.host, seenAt: h.seenAt }));
  const processes: VerifiedProcess[] = hosts.filter(fresh).flatMap((h) =>
    h.processes
      .filter((p) => p.program === program)
      .map((p) => ({
        host: h.host,
        pid: p.pid,
        buildId: p.buildId,
        version: p.version,
        onTarget: p.buildId === target.buildId,
      })),
  );
  const off = processes.filter((p) => !p.onTarget);
  const verified = processes.length > 0 && off.length === 0 && stale.length === 0;
  for (const l of table(
    ['HOST', 'PID', 'VERSION', 'BUILD', 'ON ' + opts.to],
    processes.map((p) => [p.host, String(p.pid), p.version ?? '-', p.buildId, p.onTarget ? 'yes' : 'NO']),
  ))
    if (processes.length) out.log(l);
  for (const s of stale)
    out.log(
      `host ${s.host} did not report within ${timeoutMs} ms (last heartbeat ${s.seenAt}): not verified`,
    );
  const summary = `${processes.length - off.length} of ${processes.length} live process(es) of '${program}' run ${opts.to} (build ${target.buildId})${stale.length ? `; ${stale.length} host(s) silent` : ''}`;
  if (verified) {
    out.log(`verified: ${summary}`);
    out.result({ program, version: opts.to, buildId: target.buildId, verified, processes });
    return 0;
  }
  const reasons = [
    ...(processes.length === 0
      ? [`no live process of '${program}' reported by ${hosts.length - stale.length} host(s)`]
      : []),
    ...off.map(
      (p) =>
        `pid ${p.pid} on ${p.host} runs build ${p.buildId}${p.version ? ` (${p.version})` : ''}: run 'dsu rollout ${program} --to ${opts.to}'`,
    ),
    ...stale.map(
      (s) => `host ${s.host} did not report (last heartbeat ${s.seenAt}): is its applier running?`,
    ),
  ];
  throw new CliError('not-verified', `not verified: ${summary}`, reasons);
}

export const fleetVerifyCommand = guarded(fleetVerifyBody);
