import { mapLocals } from './local-mapping';

describe('mapLocals', () => {
  it('maps same-name same-type locals and reports the rest with what to do', () => {
    const m = mapLocals(
      [{ name: 'fd', type: 'int' }, { name: 'n', type: 'int' }],
      [{ name: 'fd', type: 'int' }, { name: 'n', type: 'long' }, { name: 'stats', type: 'int' }, { name: 'z', type: 'int' }],
      { z: { expression: '0' } },
    );
    expect(m).toEqual([
      { local: 'fd', from: 'old-local', oldLocal: 'fd' },
      { local: 'n', from: 'unmapped', reason: expect.stringMatching(/changed type from 'int' to 'long'/) },
      { local: 'stats', from: 'unmapped', reason: expect.stringMatching(/initializer/) },
      { local: 'z', from: 'initializer', expression: '0' },
    ]);
  });
});
