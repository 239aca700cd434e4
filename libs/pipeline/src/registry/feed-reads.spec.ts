import { Topics } from '@dsu/events';
import {
  approvePatch,
  type RegistryHarness,
  seedTwoVersionsAndAProcess,
  startRegistry,
  waitFor,
} from '../../test/registry-harness';

// The dashboard's live feed reads only the newest rollouts, whatever the history's length.
describe('Registry: the newest rollouts', () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistry('recent-rollouts');
    await seedTwoVersionsAndAProcess(h);
  });
  afterAll(() => h.stop());

  it('lists the newest ones first, as many as asked', async () => {
    const ids: string[] = [];
    for (const v of ['v2', 'v1', 'v2']) {
      ids.push((await h.registry.requestRollout('p', v)).rolloutId);
      await new Promise((r) => setTimeout(r, 5)); // distinct request times
    }
    expect((await h.registry.listRollouts({ newest: 2 })).map((r) => r.rolloutId)).toEqual([ids[2], ids[1]]);
    expect(await h.registry.listRollouts({ newest: 10 })).toHaveLength(3);
    expect((await h.registry.listRollouts()).map((r) => r.rolloutId)).toEqual(ids); // oldest first
  });
});

// The feed's programs topic reads every version's state in a few queries: it must say what the
// per-version view (GET /programs/:p/versions) says.
describe('Registry: version states for the feed', () => {
  let h: RegistryHarness;
  beforeAll(async () => {
    h = await startRegistry('version-states');
    await seedTwoVersionsAndAProcess(h);
  });
  afterAll(() => h.stop());

  const fromViews = async () =>
    (await h.registry.listPrograms()).map(async (p) => ({
      program: p.id,
      versions: (await h.registry.listVersions(p.id)).map((v) => ({
        version: v.version,
        status: v.status,
        patch: v.patch ? (v.patch.verdict ?? v.patch.status) : null,
      })),
    }));

  it('agrees with the per-version views, before and after the verdict', async () => {
    expect(await h.registry.listVersionStates()).toEqual([
      {
        program: 'p',
        versions: [
          { version: 'v1', status: 'built', patch: null },
          { version: 'v2', status: 'built', patch: 'requested' },
        ],
      },
    ]);
    expect(await h.registry.listVersionStates()).toEqual(await Promise.all(await fromViews()));
    const requestId = (h.of(Topics.patchRequested)[0].data as { requestId: string }).requestId;
    await approvePatch(h, requestId, 'P12');
    await waitFor(
      'the verdict',
      async () => (await h.registry.listVersionStates())[0].versions[1].patch === 'approved',
    );
    expect(await h.registry.listVersionStates()).toEqual(await Promise.all(await fromViews()));
  });
});
