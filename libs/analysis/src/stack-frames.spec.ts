import { fn, model } from '../test/models';
import { CallGraph } from './call-graph';
import { stackChains } from './stack-frames';

describe('stackChains', () => {
  // main -> a -> w and main -> b -> w: two stacks at the point in w
  const m = model(
    fn('main', ['a', 'b']),
    fn('a', ['w']),
    fn('b', ['w']),
    fn('w', [], { flow: [{ kind: 'point', name: 'p', at: 1, line: 1 }] }),
  );
  const site = { point: 'p', function: 'w', at: 1, line: 1, unit: 'a.c' };
  const names = (frames: { function: string }[]) => [...new Set(frames.map((f) => f.function))].sort();

  it('lists every call chain from a function nothing calls down to the site', () => {
    const c = stackChains(site, new CallGraph(m));
    expect(c.truncated).toBe(false);
    expect(c.chains.map((ch) => ch.map((f) => f.function))).toEqual([
      ['w', 'a', 'main'],
      ['w', 'b', 'main'],
    ]);
    expect(names(c.frames)).toEqual(['a', 'b', 'main', 'w']);
  });

  it('past the chain limit still lists every frame that may be on a stack', () => {
    const c = stackChains(site, new CallGraph(m), 1);
    expect(c.truncated).toBe(true);
    expect(c.chains).toHaveLength(1);
    expect(names(c.frames)).toEqual(['a', 'b', 'main', 'w']);
  });
});
