import { fn as base, model } from '../test/models';
import { removedReferenced } from './removed-referenced';

/** A function with a body hash (what tells unchanged callers apart), its calls and address-taken flag. */
const fn = (key: string, bodyHash: string, calls: string[] = [], addressTaken = false) =>
  base(key, calls, { bodyHash, addressTaken, signature: 'void (void)' });

describe('removedReferenced', () => {
  it('flags a removed function that unchanged code still calls or that had its address taken', () => {
    const v1 = model(
      fn('a', '1', ['gone']),
      fn('b', '1', ['gone2']),
      fn('gone', 'g'),
      fn('gone2', 'g'),
      fn('cb', 'c', [], true),
    );
    const v2 = model(fn('a', '1', ['gone']), fn('b', '2'));
    const f = removedReferenced(v1, v2);
    expect(f.map((x) => x.location)).toEqual(['gone', 'cb']);
    expect(f[0].message).toMatch(/unchanged callers a still call it/);
    expect(f[1].message).toMatch(/address was taken/);
  });
});
