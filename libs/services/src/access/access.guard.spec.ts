import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { RunningServices } from '@dsu/pipeline';
import { createService } from '@dsu/service-kit';
import { setupOpenApi } from '../openapi';
import { RUNNING_SERVICES } from '../pipeline.module';
import { ServiceModule } from '../service-modules';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

/** A gateway on SQLite under a fresh DSU_HOME, over real HTTP (node:http: it may set any Host). */
async function startGateway(extraEnv: Record<string, string> = {}) {
  const home = mkdtempSync(join(tmpdir(), 'dsu-access-gw-'));
  const app: INestApplication = await createService(
    ServiceModule.for(['gateway'], { env: { DSU_HOME: home, ...extraEnv }, quiet: true }),
    'gateway',
    true,
  );
  setupOpenApi(app);
  await app.listen(0, '127.0.0.1');
  const port = Number(new URL(await app.getUrl()).port);
  const send = (
    method: string,
    path: string,
    opts: { headers?: Record<string, string>; body?: Buffer | string } = {},
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: opts.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      });
      req.on('error', reject);
      req.end(opts.body);
    });
  const admin = readFileSync(join(home, 'token'), 'utf8').trim();
  const running = app.get<RunningServices>(RUNNING_SERVICES);
  const stored = async () => ({
    programs: Number((await running.infra.ds.query('SELECT COUNT(*) AS n FROM programs'))[0].n),
    versions: Number((await running.infra.ds.query('SELECT COUNT(*) AS n FROM versions'))[0].n),
    rollouts: Number((await running.infra.ds.query('SELECT COUNT(*) AS n FROM rollouts'))[0].n),
    outbox: Number((await running.infra.ds.query('SELECT COUNT(*) AS n FROM outbox'))[0].n),
    artifacts: existsSync(join(home, 'artifacts'))
      ? readdirSync(join(home, 'artifacts'), { recursive: true }).length
      : 0,
  });
  const close = async () => {
    await app.close();
    rmSync(home, { recursive: true, force: true });
  };
  return { port, send, admin, home, running, stored, close };
}

const json = (token: string | null, body: unknown, extra: Record<string, string> = {}) => ({
  headers: {
    'content-type': 'application/json',
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...extra,
  },
  body: JSON.stringify(body),
});
const gzip = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('gateway trust boundary (real HTTP, SQLite)', () => {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  let readToken: string;
  beforeAll(async () => {
    gw = await startGateway();
    const r = await gw.send('POST', '/tokens', json(gw.admin, { name: 'reader', scopes: ['read'] }));
    expect(r.status).toBe(201);
    readToken = (r.body as { token: string }).token;
  });
  afterAll(async () => gw?.close());

  it('answers writes without a token 401 with what to do, and stores nothing', async () => {
    const before = await gw.stored();
    const p = await gw.send('POST', '/programs', json(null, { id: 'kv' }));
    expect(p).toMatchObject({ status: 401, body: { error: expect.stringMatching(/Authorization: Bearer/) } });
    expect(p.headers['www-authenticate']).toBe('Bearer realm="dsu"');
    expect(await gw.send('POST', '/rollouts', json(null, { program: 'kv', version: 'v1' }))).toMatchObject({
      status: 401,
    });
    expect(await gw.send('POST', '/programs', json('dsu_not-a-real-token', { id: 'kv' }))).toMatchObject({
      status: 401,
      body: { error: expect.stringMatching(/not valid \(unknown or revoked\)/) },
    });
    expect(await gw.stored()).toEqual(before);
  });

  it('answers a read token 403 on submit, stores nothing, and lets it read', async () => {
    expect(await gw.send('POST', '/programs', json(gw.admin, { id: 'kv' }))).toMatchObject({ status: 201 });
    const before = await gw.stored();
    const r = await gw.send('POST', '/programs/kv/versions/v1', {
      headers: { 'content-type': 'application/gzip', authorization: `Bearer ${readToken}` },
      body: gzip,
    });
    expect(r).toMatchObject({ status: 403, body: { error: expect.stringMatching(/needs 'submit'/) } });
    expect(await gw.stored()).toEqual(before);
    expect(
      await gw.send('GET', '/programs', { headers: { authorization: `Bearer ${readToken}` } }),
    ).toMatchObject({ status: 200, body: [{ id: 'kv' }] });
    // Reads need a token by default (DSU_GATEWAY_READS=token).
    expect(await gw.send('GET', '/programs')).toMatchObject({ status: 401 });
  });

  it('refuses a cross-origin text/plain POST (a CORS simple request) before anything is built', async () => {
    const before = await gw.stored();
    const simple = { 'content-type': 'text/plain', origin: 'http://evil.example' };
    // What a page can send without a preflight: no Authorization header.
    expect(await gw.send('POST', '/programs/kv/versions/v1', { headers: simple, body: gzip })).toMatchObject({
      status: 403,
      body: { error: expect.stringMatching(/origin 'http:\/\/evil.example'/) },
    });
    // Each check refuses on its own: a valid token does not let a foreign Origin or text/plain in.
    expect(
      await gw.send('POST', '/programs/kv/versions/v1', {
        headers: { ...simple, authorization: `Bearer ${gw.admin}` },
        body: gzip,
      }),
    ).toMatchObject({ status: 403 });
    expect(
      await gw.send('POST', '/programs/kv/versions/v1', {
        headers: { 'content-type': 'text/plain', authorization: `Bearer ${gw.admin}` },
        body: gzip,
      }),
    ).toMatchObject({ status: 415, body: { error: expect.stringMatching(/takes application\/gzip/) } });
    expect(
      await gw.send('POST', '/rollouts', {
        headers: { 'content-type': 'text/plain', authorization: `Bearer ${gw.admin}` },
        body: JSON.stringify({ program: 'kv', version: 'v1' }),
      }),
    ).toMatchObject({
      status: 415,
      body: { error: expect.stringMatching(/Content-Type: application\/json/) },
    });
    expect(
      await gw.send('POST', '/programs', json(gw.admin, { id: 'web' }, { origin: 'https://x.test' })),
    ).toMatchObject({
      status: 403,
    });
    expect(await gw.stored()).toEqual(before);
  });

  it("accepts the gateway's own origin (its /docs UI) and refuses a Host it is not known by", async () => {
    const self = `http://127.0.0.1:${gw.port}`;
    expect(
      await gw.send('GET', '/programs', { headers: { origin: self, authorization: `Bearer ${gw.admin}` } }),
    ).toMatchObject({ status: 200 });
    const rebound = await gw.send('GET', '/programs', {
      headers: { host: `attacker.example:${gw.port}`, authorization: `Bearer ${gw.admin}` },
    });
    expect(rebound).toMatchObject({
      status: 403,
      body: { error: expect.stringMatching(/Host 'attacker.example'.*DSU_GATEWAY_ALLOWED_HOSTS/) },
    });
    expect(
      await gw.send('GET', '/programs', {
        headers: { host: `localhost:${gw.port}`, authorization: `Bearer ${gw.admin}` },
      }),
    ).toMatchObject({ status: 200 });
    // A rebound page that is "same origin" with its own name is still refused by the Host check.
    expect(
      await gw.send(
        'POST',
        '/programs',
        json(gw.admin, { id: 'x' }, { host: 'evil.example', origin: 'http://evil.example' }),
      ),
    ).toMatchObject({ status: 403 });
  });

  it('keeps /health and /openapi.json open, and declares bearer auth, scopes and the gzip upload', async () => {
    expect(await gw.send('GET', '/health')).toMatchObject({ status: 200 });
    const doc = (await gw.send('GET', '/openapi.json')).body as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<
        string,
        Record<
          string,
          { security?: unknown; 'x-dsu-scope'?: string; requestBody?: { content: Record<string, unknown> } }
        >
      >;
    };
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const upload = doc.paths['/programs/{program}/versions/{version}'].post;
    expect(upload['x-dsu-scope']).toBe('submit');
    expect(upload.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(upload.requestBody?.content ?? {})).toEqual(['application/gzip']);
    expect(doc.paths['/rollouts'].post['x-dsu-scope']).toBe('rollout');
    expect(doc.paths['/programs'].get['x-dsu-scope']).toBe('read');
    expect(doc.paths['/tokens'].post['x-dsu-scope']).toBe('admin');
    expect(doc.paths['/audit'].get['x-dsu-scope']).toBe('read');
  });

  it('manages tokens with the admin scope: hashed at rest, listed without secrets, revoked for good', async () => {
    const made = await gw.send(
      'POST',
      '/tokens',
      json(gw.admin, { name: 'ci', scopes: ['submit', 'rollout'] }),
    );
    expect(made).toMatchObject({
      status: 201,
      body: { name: 'ci', scopes: ['submit', 'rollout'], id: expect.stringMatching(/^tok_/) },
    });
    const { id, token } = made.body as { id: string; token: string };
    expect(await gw.send('POST', '/tokens', json(readToken, { name: 'x', scopes: ['admin'] }))).toMatchObject(
      {
        status: 403,
      },
    );
    const rows = JSON.stringify(await gw.running.infra.ds.query('SELECT * FROM api_tokens'));
    for (const t of [token, gw.admin, readToken]) expect(rows).not.toContain(t);
    const list = await gw.send('GET', '/tokens', { headers: { authorization: `Bearer ${gw.admin}` } });
    expect(JSON.stringify(list.body)).not.toContain(token);
    expect(list.body).toEqual(
      expect.arrayContaining([expect.objectContaining({ id, name: 'ci', revoked: false })]),
    );
    expect(await gw.send('POST', '/programs', json(token, { id: 'by-ci' }))).toMatchObject({ status: 201 });
    expect(
      await gw.send('DELETE', `/tokens/${id}`, { headers: { authorization: `Bearer ${gw.admin}` } }),
    ).toMatchObject({ status: 200, body: { id, revokedAt: expect.any(String) } });
    expect(await gw.send('POST', '/programs', json(token, { id: 'after-revoke' }))).toMatchObject({
      status: 401,
    });
  });

  it('records who did what in the audit log, readable with the read scope', async () => {
    // A refusal after the access checks (no such program) is audited with its reason; the
    // guard's refusals (401/403/415 above) are not: they left nothing behind.
    expect(
      await gw.send('POST', '/programs/nope/versions/v1', {
        headers: { 'content-type': 'application/gzip', authorization: `Bearer ${gw.admin}` },
        body: gzip,
      }),
    ).toMatchObject({ status: 404 });
    const audit = await gw.send('GET', '/audit?limit=50', {
      headers: { authorization: `Bearer ${readToken}` },
    });
    expect(audit.status).toBe(200);
    const rows = audit.body as {
      action: string;
      program: string | null;
      outcome: string;
      actor: { name: string };
    }[];
    expect(rows.map((r) => [r.action, r.program, r.actor.name])).toEqual(
      expect.arrayContaining([
        ['token.create', null, expect.stringMatching(/^local:/)],
        ['program.register', 'kv', expect.stringMatching(/^local:/)],
        ['program.register', 'by-ci', 'ci'],
        ['token.revoke', null, expect.stringMatching(/^local:/)],
      ]),
    );
    expect(
      (await gw.send('GET', '/audit?program=by-ci', { headers: { authorization: `Bearer ${readToken}` } }))
        .body,
    ).toEqual([
      expect.objectContaining({ action: 'program.register', program: 'by-ci', outcome: 'created' }),
    ]);
    expect(
      await gw.send('GET', '/audit?limit=0', { headers: { authorization: `Bearer ${readToken}` } }),
    ).toMatchObject({
      status: 400,
    });
    const nope = await gw.send('GET', '/audit?program=nope', {
      headers: { authorization: `Bearer ${readToken}` },
    });
    expect(nope.body).toEqual([
      expect.objectContaining({
        action: 'version.submit',
        target: 'v1',
        outcome: 'refused',
        actor: expect.objectContaining({ name: expect.stringMatching(/^local:/) }),
        detail: { status: 404, reason: expect.stringMatching(/not registered/) },
      }),
    ]);
    // The read token's refused submit (403) and the unauthenticated writes left no row.
    const kv = await gw.send('GET', '/audit?program=kv', {
      headers: { authorization: `Bearer ${readToken}` },
    });
    expect((kv.body as { action: string }[]).map((r) => r.action)).toEqual(['program.register']);
  });
});

describe('gateway with DSU_GATEWAY_READS=open and configured hosts and origins', () => {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  beforeAll(async () => {
    gw = await startGateway({
      DSU_GATEWAY_READS: 'open',
      DSU_GATEWAY_ALLOWED_HOSTS: 'dsu.internal',
      DSU_GATEWAY_ALLOWED_ORIGINS: 'https://ops.example.com',
    });
  });
  afterAll(async () => gw?.close());

  it('lets anyone read the registry but not the audit log, and still needs tokens for writes', async () => {
    expect(await gw.send('GET', '/programs')).toMatchObject({ status: 200, body: [] });
    expect(await gw.send('GET', '/audit')).toMatchObject({ status: 401 });
    expect(await gw.send('POST', '/programs', json(null, { id: 'kv' }))).toMatchObject({ status: 401 });
  });

  it('accepts the configured Host and Origin', async () => {
    expect(
      await gw.send('GET', '/programs', {
        headers: { host: 'dsu.internal:7400', origin: 'https://ops.example.com' },
      }),
    ).toMatchObject({
      status: 200,
    });
    expect(
      await gw.send('GET', '/programs', { headers: { origin: 'https://other.example.com' } }),
    ).toMatchObject({
      status: 403,
    });
  });
});
