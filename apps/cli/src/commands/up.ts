import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Output } from '../output';

/** Where the gateway keeps the local user's token (libs/access localTokenPath). */
const tokenPath = (env: NodeJS.ProcessEnv = process.env) =>
  env.DSU_TOKEN_FILE || join(env.DSU_HOME ?? join(homedir(), '.dsu'), 'token');

/**
 * `dsu up`: the five services in one process. In-process bus and SQLite under $DSU_HOME by
 * default; Kafka and PostgreSQL when KAFKA_BROKERS / DATABASE_URL are set.
 */
export async function upCommand(opts: { port?: number }, out: Output): Promise<number> {
  // Loaded here, not at the top: the other commands start faster without NestJS and TypeORM.
  const [
    { Logger },
    { createService, listenStartupProbe, tlsOptionsFromEnv },
    { ServiceModule, serveDashboard, setupOpenApi },
  ] = await Promise.all([import('@nestjs/common'), import('@dsu/service-kit'), import('@dsu/services')]);
  const port = opts.port ?? Number(process.env.DSU_GATEWAY_PORT ?? 7400);
  const host = process.env.DSU_BIND ?? '127.0.0.1';
  // While PostgreSQL / Kafka (when set) are waited for, /health answers 503 with what it waits for.
  const probe = port === 0 ? undefined : await listenStartupProbe(port, host, 'dsu', tlsOptionsFromEnv());
  // With --json, stdout carries only the one JSON object; the services' own logs go to stderr.
  const app = await createService(ServiceModule.all(), 'dsu', out.json).finally(() => probe?.close());
  setupOpenApi(app);
  serveDashboard(app);
  await app.listen(port, host);
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  new Logger('dsu').log(
    JSON.stringify({
      msg: 'listening',
      services: ['gateway', 'compiler', 'patcher', 'checker', 'applier'],
      url,
    }),
  );
  out.log(
    `dsu up: gateway, compiler, patcher, checker and applier at ${url} (dashboard ${url}/, API document ${url}/openapi.json); Ctrl-C stops`,
  );
  // The gateway wrote (or kept) its user's admin token there before listening; the CLI reads it.
  out.log(`dsu up: the dsu commands of this user authenticate with the admin token in ${tokenPath()}`);
  out.result({ url, pid: process.pid });
  // Nest's shutdown hooks (createService) close the app on SIGINT/SIGTERM: consumers drain,
  // offsets are committed, committed outbox rows are published, then the process exits.
  return new Promise<number>(() => undefined);
}
