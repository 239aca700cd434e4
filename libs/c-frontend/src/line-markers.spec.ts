import { parseLineMarkers, regionAt } from './line-markers';
import { symbolKey } from './program-model';

describe('line markers of a preprocessed unit', () => {
  const unit = Buffer.from(
    [
      '# 1 "app/main.c"',
      '# 1 "<built-in>" 1',
      '# 1 "/usr/include/stdio.h" 1 3 4',
      'extern int printf(const char *, ...);',
      '# 3 "app/main.c" 2',
      'int main(void) { return 0; } /* é */',
      '',
    ].join('\n'),
  );

  it('splits the buffer into regions by file, with the system-header flag', () => {
    const r = parseLineMarkers(unit);
    expect(r.map((x) => [x.file, x.line, x.system])).toEqual([
      ['app/main.c', 1, false],
      ['<built-in>', 1, false],
      ['/usr/include/stdio.h', 1, true],
      ['app/main.c', 3, false],
    ]);
    const mainOffset = unit.indexOf('int main');
    expect(regionAt(r, mainOffset)?.file).toBe('app/main.c');
    expect(regionAt(r, unit.indexOf('extern int printf'))?.system).toBe(true);
    expect(regionAt(r, 0)).toBeUndefined();
  });

  it('keys statics by unit so same-named ones in two files stay apart', () => {
    expect(symbolKey('helper', 'a.c', true)).not.toBe(symbolKey('helper', 'b.c', true));
    expect(symbolKey('main', 'a.c', false)).toBe('main');
  });
});
