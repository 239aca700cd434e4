import 'reflect-metadata';
import { INestApplication, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { listenStartupProbe } from './startup-probe';
import { tlsOptionsFromEnv } from './tls';

export interface ServiceOptions {
  name: string;
  /** Environment variable holding the HTTP port, e.g. `DSU_GATEWAY_PORT`. */
  portEnv: string;
  defaultPort: number;
  /** Runs on the created app before it listens (e.g. to mount the OpenAPI document). */
  configure?: (app: INestApplication) => void | Promise<void>;
}

/**
 * Creates the service's Nest application with shutdown hooks, so SIGTERM drains in-flight work;
 * HTTPS when `DSU_TLS_CERT` / `DSU_TLS_KEY` are set in `env`.
 */
export async function createService(
  module: unknown,
  name: string,
  quiet = false,
  env: NodeJS.ProcessEnv = process.env,
): Promise<INestApplication> {
  const app = await NestFactory.create(module as never, {
    logger: quiet ? false : (new Logger(name) as never),
    bufferLogs: false,
    httpsOptions: tlsOptionsFromEnv(env),
  });
  app.enableShutdownHooks();
  return app;
}

/** Starts a service on 127.0.0.1 (`DSU_BIND` overrides) at its configured port; logs where it listens. */
export async function runService(module: unknown, opts: ServiceOptions): Promise<INestApplication> {
  const raw = process.env[opts.portEnv];
  const port = raw === undefined ? opts.defaultPort : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${opts.portEnv} must be a port number (0-65535), got '${raw}'`);
  }
  const host = process.env.DSU_BIND ?? '127.0.0.1';
  // Until the modules are up (database and bus reached), /health answers 503 with what it waits for.
  const probe = port === 0 ? undefined : await listenStartupProbe(port, host, opts.name, tlsOptionsFromEnv());
  let app: INestApplication;
  try {
    app = await createService(module, opts.name);
    await opts.configure?.(app);
  } finally {
    await probe?.close();
  }
  await app.listen(port, host);
  new Logger(opts.name).log(
    JSON.stringify({ msg: 'listening', service: opts.name, url: await app.getUrl() }),
  );
  return app;
}

/** Boots a module on an ephemeral loopback port, reads `GET /health`, and closes it again. */
export async function probeHealth(module: unknown, name: string): Promise<{ status: number; body: unknown }> {
  const app = await createService(module, name, true);
  await app.listen(0, '127.0.0.1');
  try {
    const res = await fetch(`${await app.getUrl()}/health`);
    return { status: res.status, body: await res.json() };
  } finally {
    await app.close();
  }
}
