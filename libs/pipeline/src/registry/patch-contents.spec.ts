import { createHash } from 'node:crypto';
import { Topics } from '@dsu/events';
import {
  type RegistryHarness,
  seedTwoVersionsAndAProcess,
  startRegistry,
  waitFor,
} from '../../test/registry-harness';

// What a generated patch changes — functions, struct layouts with how each new field gets its
// value, globals — is kept by the registry and shown in GET /patches (the dashboard's lineage).
describe('Registry: the contents of a generated patch', () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistry('patch-contents');
    await seedTwoVersionsAndAProcess(h);
  });
  afterAll(() => h.stop());

  it('keeps the types and globals a patch changes, and says null for a patch that did not report them', async () => {
    const requestId = (h.of(Topics.patchRequested)[0].data as { requestId: string }).requestId;
    const types = [
      {
        name: 'struct conn',
        oldSize: 24,
        newSize: 32,
        mode: 'eager' as const,
        fields: [{ field: 'last_seen', how: 'default 0' }],
      },
    ];
    const globals = [
      { key: 'server_name', change: 'initializer', note: 'the running value is kept' },
      { key: 'stats', change: 'added' },
    ];
    await h.publish(Topics.patchGenerated, {
      program: 'p',
      requestId,
      patchId: 'P-data',
      bundleSha256: createHash('sha256').update('x').digest('hex'),
      from: { version: 'v1', buildId: 'b1' },
      to: { version: 'v2', buildId: 'b2' },
      functions: [{ key: 'serve', change: 'body' }],
      types,
      globals,
    });
    const patch = await waitFor('the generated patch', async () =>
      (await h.registry.listPatches('p')).find((p) => p.patchId === 'P-data'),
    );
    expect(patch).toMatchObject({
      status: 'generated',
      functions: [{ key: 'serve', change: 'body' }],
      types,
      globals,
    });
    // Payloads from before types/globals were reported are still valid and read as unknown.
    const old = await h.registry.requestPatch('p', 'v2', 'v1');
    await h.publish(Topics.patchGenerated, {
      program: 'p',
      requestId: old.requestId,
      patchId: 'P-old',
      bundleSha256: createHash('sha256').update('y').digest('hex'),
      from: { version: 'v2', buildId: 'b2' },
      to: { version: 'v1', buildId: 'b1' },
      functions: [],
    });
    const legacy = await waitFor('the older-style patch', async () =>
      (await h.registry.listPatches('p')).find((p) => p.patchId === 'P-old'),
    );
    expect(legacy).toMatchObject({ types: null, globals: null });
  });
});
