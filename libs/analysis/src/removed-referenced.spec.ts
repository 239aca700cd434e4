import type { FunctionModel, ProgramModel } from '@dsu/c-frontend';
import { removedReferenced } from './removed-referenced';

const fn = (key: string, bodyHash: string, calls: string[] = [], addressTaken = false): FunctionModel => ({
  key,
  name: key,
  unit: 'a.c',
  isStatic: false,
  signature: 'void (void)',
  bodyHash,
  calls,
  indirectCalls: [],
  addressTaken,
  variadic: false,
  typesUsed: [],
  globalsRead: [],
  globalsWritten: [],
  updatePoints: [],
  transactions: [],
});
const model = (...fns: FunctionModel[]): ProgramModel => ({
  format: 1,
  program: 'p',
  buildId: 'b',
  units: [],
  globals: {},
  types: {},
  functions: Object.fromEntries(fns.map((f) => [f.key, f])),
});

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
