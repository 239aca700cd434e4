import { readFileSync } from 'node:fs';

/** Certificate and key for HTTPS, as Node's `https.createServer` takes them. */
export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
}

/**
 * HTTPS from the environment: `DSU_TLS_CERT` and `DSU_TLS_KEY` (PEM file paths), both or neither.
 * Neither: plain HTTP (the default, bound to 127.0.0.1). Throws saying which file is wrong.
 */
export function tlsOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsOptions | undefined {
  const certPath = env.DSU_TLS_CERT;
  const keyPath = env.DSU_TLS_KEY;
  if (!certPath && !keyPath) return undefined;
  if (!certPath || !keyPath)
    throw new Error(
      `HTTPS needs both DSU_TLS_CERT and DSU_TLS_KEY (PEM files); only ${certPath ? 'DSU_TLS_CERT' : 'DSU_TLS_KEY'} is set`,
    );
  const read = (name: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${name}: cannot read '${path}': ${(err as Error).message}`);
    }
  };
  return { cert: read('DSU_TLS_CERT', certPath), key: read('DSU_TLS_KEY', keyPath) };
}
