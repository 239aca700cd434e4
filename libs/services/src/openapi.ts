import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { BEARER } from './access/decorators';
import { apiSchemas, otherAnswers, schemaOf } from './openapi-schemas';

/** Serves the OpenAPI document at /openapi.json and its UI at /docs. */
export function setupOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('dsu gateway')
    .setDescription(
      'Registry, versions, patches, verdicts, rollouts, results, inventory and artifacts of the DSU update pipeline',
    )
    .setVersion('1')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description:
          "An API token (dsu_...). Each operation names the scope it needs in x-dsu-scope: submit, rollout, read (GET; not needed when DSU_GATEWAY_READS=open, except /audit) or admin (tokens; admin implies every scope). 'dsu token create' makes one; 'dsu up' writes an admin token for its user to $DSU_HOME/token.",
      },
      BEARER,
    )
    .build();
  SwaggerModule.setup(
    'docs',
    app,
    () => withErrorBodies(withoutDuplicateSecurity(SwaggerModule.createDocument(app, config))),
    {
      jsonDocumentUrl: 'openapi.json',
    },
  );
}

/**
 * A route's own `@RequireScope` and its controller's both declare the bearer scheme, which the
 * generator concatenates; one requirement per scheme is what the operation means.
 */
function withoutDuplicateSecurity(doc: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(doc.paths))
    for (const op of Object.values(item) as { security?: Record<string, string[]>[] }[]) {
      if (!op || typeof op !== 'object' || !Array.isArray(op.security)) continue;
      const seen = new Set<string>();
      op.security = op.security.filter((r) => {
        const key = JSON.stringify(r);
        return seen.has(key) ? false : (seen.add(key), true);
      });
    }
  return doc;
}

/**
 * The views' schemas as components, the answers of the access routes (tokens, audit), and the
 * ErrorBody schema on every error answer declared
 * without a body (the access guard's 401 / 403, the 415 of a wrong media type): every error the
 * gateway sends is `{"error", "code"?}` in JSON, so a generated client can read it.
 */
function withErrorBodies(doc: OpenAPIObject): OpenAPIObject {
  doc.components = { ...doc.components, schemas: { ...doc.components?.schemas, ...apiSchemas } };
  const error = { 'application/json': { schema: { $ref: '#/components/schemas/ErrorBody' } } };
  for (const [path, methods] of Object.entries(otherAnswers))
    for (const [method, [status, view, list]] of Object.entries(methods)) {
      const op = (doc.paths[path] as Record<string, { responses?: Record<string, unknown> }> | undefined)?.[
        method
      ];
      if (!op) continue; // the access routes are not served by this process
      op.responses = {
        ...op.responses,
        [status]: { description: view, content: { 'application/json': { schema: schemaOf(view, list) } } },
      };
    }
  for (const item of Object.values(doc.paths))
    for (const op of Object.values(item) as { responses?: Record<string, { content?: unknown }> }[]) {
      if (!op || typeof op !== 'object' || !op.responses) continue;
      for (const [status, r] of Object.entries(op.responses))
        if (Number(status) >= 400 && !r.content) r.content = error;
    }
  return doc;
}
