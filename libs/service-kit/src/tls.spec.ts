import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { createService } from './bootstrap';
import { HealthModule } from './health.module';
import { tlsOptionsFromEnv } from './tls';

@Module({ imports: [HealthModule.forService('tls-probe')] })
class ProbeModule {}

const dir = join(__dirname, '..', 'test', 'tls');
const env = { DSU_TLS_CERT: join(dir, 'localhost.cert.pem'), DSU_TLS_KEY: join(dir, 'localhost.key.pem') };

function getHealth(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/health',
        ca: readFileSync(env.DSU_TLS_CERT),
        servername: 'localhost',
      },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('TLS from DSU_TLS_CERT / DSU_TLS_KEY', () => {
  it('serves HTTPS with the configured certificate', async () => {
    const app = await createService(ProbeModule, 'tls-probe', true, env);
    await app.listen(0, '127.0.0.1');
    try {
      expect(await app.getUrl()).toMatch(/^https:/);
      const port = Number(new URL(await app.getUrl()).port);
      const res = await getHealth(port);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ status: 'ok', service: 'tls-probe' });
    } finally {
      await app.close();
    }
  });

  it('stays plain HTTP without them, and says what is missing or unreadable', () => {
    expect(tlsOptionsFromEnv({})).toBeUndefined();
    expect(() => tlsOptionsFromEnv({ DSU_TLS_CERT: env.DSU_TLS_CERT })).toThrow(
      /needs both DSU_TLS_CERT and DSU_TLS_KEY.*only DSU_TLS_CERT/,
    );
    expect(() => tlsOptionsFromEnv({ ...env, DSU_TLS_KEY: '/nonexistent/key.pem' })).toThrow(
      /DSU_TLS_KEY: cannot read '\/nonexistent\/key.pem'/,
    );
  });
});
