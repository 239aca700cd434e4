import type { FunctionModel, ProgramModel } from '@dsu/c-frontend';
import { diffFunctions } from './model-diff';

const fn = (key: string, bodyHash: string, signature = 'int (int)'): FunctionModel => ({
  key, name: key.split('::').pop() as string, unit: 'a.c', isStatic: key.includes('::'), signature, bodyHash,
  calls: [], indirectCalls: [], addressTaken: false, variadic: false, typesUsed: [], globalsRead: [], globalsWritten: [],
  updatePoints: [], transactions: [],
});
const model = (...fns: FunctionModel[]): ProgramModel => ({
  format: 1, program: 'p', buildId: 'b', units: [], globals: {}, types: {},
  functions: Object.fromEntries(fns.map((f) => [f.key, f])),
});

describe('diffFunctions', () => {
  it('classifies body, signature, added and removed changes, statics by unit', () => {
    const v1 = model(fn('main', 'm'), fn('handle', 'h1'), fn('a.c::helper', 'x'), fn('b.c::helper', 'y'), fn('old', 'o'), fn('sig', 's'));
    const v2 = model(fn('main', 'm'), fn('handle', 'h2'), fn('a.c::helper', 'x'), fn('b.c::helper', 'y2'), fn('fresh', 'f'), fn('sig', 's', 'long (int, int)'));
    expect(diffFunctions(v1, v2)).toEqual({ body: ['b.c::helper', 'handle'], signature: ['sig'], added: ['fresh'], removed: ['old'] });
    expect(diffFunctions(v1, v1)).toEqual({ body: [], signature: [], added: [], removed: [] });
  });
});
