import { type RegistryHarness, seedTwoVersionsAndAProcess, startRegistry } from '../../test/registry-harness';

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
    expect((await h.registry.listRecentRollouts(2)).map((r) => r.rolloutId)).toEqual([ids[2], ids[1]]);
    expect(await h.registry.listRecentRollouts(10)).toHaveLength(3);
  });
});
