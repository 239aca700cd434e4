import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { createService } from '@dsu/service-kit';
import { setupOpenApi } from './openapi';
import { ServiceModule } from './service-modules';

describe('gateway HTTP API (real HTTP, SQLite)', () => {
  let home: string;
  let app: INestApplication;
  let url: string;
  let token: string;
  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'dsu-gw-'));
    app = await createService(
      ServiceModule.for(['gateway'], { env: { DSU_HOME: home }, quiet: true }),
      'gateway',
      true,
    );
    setupOpenApi(app);
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    // The admin token the gateway wrote for the local user on its first start.
    token = readFileSync(join(home, 'token'), 'utf8').trim();
  });
  afterAll(async () => {
    await app.close();
    rmSync(home, { recursive: true, force: true });
  });

  const call = async (method: string, path: string, body?: unknown, type = 'application/json') => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': type }),
      },
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  };

  it('registers programs idempotently and lists them', async () => {
    expect(await call('POST', '/programs', { id: 'kv', description: 'a key-value server' })).toEqual({
      status: 201,
      body: { id: 'kv', description: 'a key-value server', created: true },
    });
    expect((await call('POST', '/programs', { id: 'kv' })).body).toMatchObject({ created: false });
    expect((await call('GET', '/programs')).body).toEqual([{ id: 'kv', description: 'a key-value server' }]);
  });

  it('answers bad requests with a JSON error that says what to do', async () => {
    expect(await call('POST', '/programs', { name: 'kv' })).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/"id"/), code: 'invalid-request' },
    });
    expect(
      await call('POST', '/programs/kv/versions/v1', Buffer.from('not a tarball'), 'application/gzip'),
    ).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/not a gzip tarball/), code: 'invalid-request' },
    });
    expect(
      await call('POST', '/programs/nope/versions/v1', Buffer.from([0x1f, 0x8b, 0]), 'application/gzip'),
    ).toEqual({
      status: 404,
      body: { error: expect.stringMatching(/not registered/), code: 'program-not-found' },
    });
    expect(await call('GET', '/programs/kv/versions/v9')).toEqual({
      status: 404,
      body: { error: expect.stringMatching(/submit it first/), code: 'version-not-found' },
    });
    expect(await call('POST', '/rollouts', { program: 'kv', version: 'v9' })).toMatchObject({
      status: 404,
      body: { code: 'version-not-found' },
    });
    // An unknown program is named as such, not blamed on the version.
    expect(await call('GET', '/programs/nosuch/versions')).toEqual({
      status: 404,
      body: { error: expect.stringMatching(/program 'nosuch' is not registered/), code: 'program-not-found' },
    });
    expect(await call('POST', '/rollouts', { program: 'nosuch', version: 'v2' })).toEqual({
      status: 404,
      body: { error: expect.stringMatching(/program 'nosuch' is not registered/), code: 'program-not-found' },
    });
    expect(
      await call(
        'POST',
        '/programs/kv/versions/v1?updatePoint=serve:middle',
        Buffer.from([0x1f, 0x8b, 0]),
        'application/gzip',
      ),
    ).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/FUNCTION:entry or FUNCTION:loop/), code: 'invalid-update-point' },
    });
    expect(await call('GET', '/artifacts/xyz')).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/not a sha256/), code: 'invalid-request' },
    });
    expect(await call('GET', `/artifacts/${'0'.repeat(64)}`)).toMatchObject({ status: 404 });
  });

  it('aborts and retries rollouts with the rollout scope only, with errors that say what to do', async () => {
    const created = await call('POST', '/tokens', { name: 'viewer', scopes: ['read'] });
    const viewer = (created.body as { token: string }).token;
    const asViewer = await fetch(`${url}/rollouts/r1/abort`, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'x' }),
    });
    expect(asViewer.status).toBe(403);
    expect(await call('POST', '/rollouts/r1/abort', {})).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/"reason"/), code: 'invalid-request' },
    });
    expect(await call('POST', '/rollouts/r1/abort', { reason: 'stuck' })).toEqual({
      status: 404,
      body: { error: "rollout 'r1' is not known", code: 'rollout-not-found' },
    });
    expect(await call('POST', '/rollouts/r1/retry')).toMatchObject({ status: 404 });
    const doc = (await call('GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.paths['/rollouts/{id}/abort'].post).toMatchObject({ 'x-dsu-scope': 'rollout' });
    expect(doc.paths['/rollouts/{id}/retry'].post).toMatchObject({ 'x-dsu-scope': 'rollout' });
  });

  it('serves its OpenAPI document', async () => {
    const doc = (await call('GET', '/openapi.json')).body as {
      openapi: string;
      paths: Record<string, unknown>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/programs',
        '/programs/{program}/versions/{version}',
        '/patches',
        '/verdicts',
        '/rollouts',
        '/rollouts/{id}',
        '/results',
        '/inventory',
        '/artifacts/{sha256}',
      ]),
    );
  });
});
