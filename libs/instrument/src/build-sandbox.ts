import { spawn } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { existsSync, lchownSync, lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve, sep } from 'node:path';

/**
 * How a build is isolated. `required`: always in the sandbox; a machine without one fails the
 * build saying what to install. `auto`: in the sandbox when it works here, else unsandboxed.
 * `off`: as the calling user with its full rights (a user building their own code).
 */
export type SandboxMode = 'required' | 'auto' | 'off';

export interface SandboxOptions {
  mode: SandboxMode;
  /**
   * Paths that must stay invisible inside the sandbox even when they lie under a directory it
   * shows read-only (e.g. `$DSU_HOME`: artifact store, signing keys, database).
   */
  hide?: string[];
}

/** A build command wrapped to run inside the sandbox. */
export interface SandboxedCommand {
  file: string;
  args: string[];
}

/** The uid/gid builds run as when the caller is root (nobody/nogroup on Debian). */
export const SANDBOX_UID = 65534;

/** Size of the sandbox's private /tmp (tmpfs, memory): a build cannot fill RAM through it. */
const TMP_BYTES = 512 * 1024 * 1024;

/** Reads a sandbox mode (`required`, `auto`, `off`) from the environment; throws on anything else. */
export function sandboxModeFromEnv(env: NodeJS.ProcessEnv, name: string, dflt: SandboxMode): SandboxMode {
  const raw = (env[name] ?? '').trim();
  if (raw === '') return dflt;
  if (raw === 'required' || raw === 'auto' || raw === 'off') return raw;
  throw new Error(`${name} must be 'required', 'auto' or 'off', got '${raw}'`);
}

function findOnPath(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

const isRoot = () => process.getuid?.() === 0;

/**
 * The installation the build needs to see read-only: the outermost directory above this package
 * that holds a node_modules (the workspace or the install prefix), and node's own prefix.
 */
function installRoots(): string[] {
  let dir = realpathSync(__dirname);
  let top: string | undefined;
  while (dirname(dir) !== dir) {
    if (existsSync(join(dir, 'node_modules'))) top = dir;
    dir = dirname(dir);
  }
  const roots = [
    top ?? resolve(__dirname, '..', '..', '..'),
    dirname(dirname(realpathSync(process.execPath))),
  ];
  if (process.env.DSU_RUNTIME_DIR) roots.push(realpathSync(process.env.DSU_RUNTIME_DIR));
  return roots;
}

const within = (p: string, root: string) =>
  p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/**
 * bubblewrap arguments: new mount, pid, ipc, uts and network namespaces (no network: a fresh
 * loopback only); the system (/usr, /etc) and the installation read-only; a private /tmp, /dev
 * and /proc; `workDir` the only writable place (the command starts in `cwd`); `hide` covered by
 * empty tmpfs; a clean environment. As root, bwrap sets this up with root's rights (so it can
 * bind paths under 0700 directories) and the command then runs as nobody (setpriv inside, every
 * capability dropped), so root-only files (/etc/shadow) stay unreadable; otherwise bwrap runs in
 * a user namespace as the caller.
 */
export function sandboxCommand(
  workDir: string,
  cwd: string,
  command: string[],
  env: Record<string, string>,
  hide: string[] = [],
): SandboxedCommand {
  const root = isRoot();
  const args = [
    ...(root ? [] : ['--unshare-user']),
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-net',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'dsu-build',
    '--ro-bind',
    '/usr',
    '/usr',
  ];
  // Merged-/usr systems have /bin, /lib... as links into /usr; older ones as directories.
  for (const top of ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32']) {
    if (!existsSync(top)) continue;
    if (lstatSync(top).isSymbolicLink()) args.push('--symlink', realpathSync(top), top);
    else args.push('--ro-bind', top, top);
  }
  args.push('--ro-bind', '/etc', '/etc', '--perms', '1777', '--size', String(TMP_BYTES), '--tmpfs', '/tmp');
  args.push('--dev', '/dev', '--proc', '/proc');
  // Mount points under /tmp, /root, /home... are created world-traversable (their host modes,
  // e.g. a 0700 mkdtemp, would lock the unprivileged build out of its own directory).
  const made = new Set(['/', '/tmp', '/usr', '/etc', '/dev', '/proc']);
  const parents = (dest: string) => {
    const chain: string[] = [];
    for (let d = dirname(dest); !made.has(d) && !['/usr', '/etc'].some((r) => within(d, r)); d = dirname(d))
      chain.unshift(d);
    for (const d of chain) {
      args.push('--perms', '0755', '--dir', d);
      made.add(d);
    }
  };
  const roots = [...new Set(installRoots().filter((r) => !within(r, '/usr')))];
  for (const r of roots) {
    parents(r);
    args.push('--ro-bind', r, r);
  }
  for (const h of hide) {
    const p = resolve(h);
    if (!existsSync(p) || within(resolve(workDir), p)) continue;
    if (!['/etc', ...roots].some((r) => within(p, r))) continue; // not visible anyway
    if (statSync(p).isDirectory()) args.push('--tmpfs', p);
    else args.push('--ro-bind', '/dev/null', p);
  }
  parents(workDir);
  args.push('--bind', workDir, workDir, '--chdir', cwd, '--clearenv');
  for (const [k, v] of Object.entries(env)) args.push('--setenv', k, v);
  const bwrap = findOnPath('bwrap', process.env) ?? 'bwrap';
  if (!root) return { file: bwrap, args: [...args, '--', ...command] };
  const setpriv = findOnPath('setpriv', process.env) ?? 'setpriv';
  const caps = ['CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP'].flatMap((c) => ['--cap-add', c]);
  const drop = [
    `--reuid=${SANDBOX_UID}`,
    `--regid=${SANDBOX_UID}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
  ];
  return { file: bwrap, args: [...args, ...caps, '--', setpriv, ...drop, '--', ...command] };
}

type Probe = { ok: true } | { ok: false; reason: string };
const probes = new Map<string, Promise<Probe>>();

/**
 * Whether the sandbox works on this machine (bwrap present, user namespaces allowed), checked
 * once per PATH by running `true` in it (asynchronously: a service's event loop keeps going);
 * otherwise the reason and what to install.
 */
export function probeSandbox(env: NodeJS.ProcessEnv = process.env): Promise<Probe> {
  const key = env.PATH ?? '';
  let probe = probes.get(key);
  if (!probe) probes.set(key, (probe = runProbe(env)));
  return probe;
}

async function runProbe(env: NodeJS.ProcessEnv): Promise<Probe> {
  if (!findOnPath('bwrap', env)) {
    return {
      ok: false,
      reason:
        'the build sandbox needs bubblewrap, which is not installed: install it (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap), or set DSU_BUILD_SANDBOX=off to build without isolation',
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'dsu-sandbox-probe-'));
  let r: { code: number | null; stderr: string };
  try {
    if (isRoot()) await chown(dir, SANDBOX_UID, SANDBOX_UID);
    const cmd = sandboxCommand(dir, dir, ['/bin/true'], { PATH: '/usr/bin:/bin' });
    r = await new Promise((res) => {
      let stderr = '';
      const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', (err) => res({ code: null, stderr: err.message }));
      child.on('close', (code) => res({ code, stderr }));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (r.code === 0) return { ok: true };
  const why = (r.stderr || `exit ${r.code}`).trim().split('\n')[0];
  return {
    ok: false,
    reason: `the build sandbox (bubblewrap) does not work on this machine: ${why}; allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu an AppArmor profile for bwrap), or set DSU_BUILD_SANDBOX=off to build without isolation`,
  };
}

/** Gives a tree to `uid`/`gid` without following links (the sandbox user must write it; the caller gets it back). */
export function chownTree(dir: string, uid: number, gid: number): void {
  lchownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid);
    else lchownSync(p, uid, gid);
  }
}

/** True when builds should run in the sandbox under `mode`; throws the reason when it is required but unavailable. */
export async function useSandbox(mode: SandboxMode, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (mode === 'off') return false;
  const probe = await probeSandbox(env);
  if (probe.ok) return true;
  if (mode === 'required') throw new Error(probe.reason);
  return false;
}

/** Whether the sandbox drops to SANDBOX_UID (the caller is root). */
export const sandboxDropsRoot = isRoot;
