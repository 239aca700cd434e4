import { TopLevelSplitter } from './ast';

describe('TopLevelSplitter (streaming decoder of the JSON AST)', () => {
  const tu = {
    id: '0x1',
    kind: 'TranslationUnitDecl',
    loc: {},
    range: { begin: {}, end: {} },
    inner: [
      {
        id: '0x2',
        kind: 'TypedefDecl',
        loc: { offset: 3 },
        name: 'a{[',
        inner: [{ kind: 'X', value: '"}]\\' }],
      },
      { id: '0x3', kind: 'FunctionDecl', loc: { offset: 10 }, name: 'f', inner: [[1, [2]], { a: '{' }] },
      { id: '0x4', kind: 'VarDecl', name: 'é', inner: [] },
    ],
  };
  const text = Buffer.from(JSON.stringify(tu, null, 2));

  it('yields each top-level declaration whatever the chunk boundaries', () => {
    for (const size of [1, 2, 3, 7, 64, text.length]) {
      const got: unknown[] = [];
      const s = new TopLevelSplitter((el) => got.push(JSON.parse(el.toString('utf8'))));
      for (let i = 0; i < text.length; i += size) s.push(text.subarray(i, i + size));
      s.end();
      expect(got).toEqual(tu.inner);
      expect(s.bytes).toBe(text.length);
    }
  });

  it('reports a truncated dump', () => {
    const s = new TopLevelSplitter(() => undefined);
    s.push(text.subarray(0, text.length - 10));
    expect(() => s.end()).toThrow(/truncated/);
  });
});
