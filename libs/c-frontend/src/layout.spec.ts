import { parseRecordLayouts } from './layout';

describe('parseRecordLayouts', () => {
  it('reads bit-field offsets of direct, nested and anonymous members', () => {
    const dump = [
      '',
      '*** Dumping AST Record Layout',
      '         0 | struct S',
      '         0 |   int a',
      '         4 |   struct inner in',
      '         4 |     int x',
      '    15:0-2 |   unsigned int bf',
      '        16 |   struct S::(unnamed at a.c:6:82) fg',
      '    16:0-0 |     unsigned int deep',
      '        20 |   union S::(anonymous at a.c:7:3) ',
      '    20:3-5 |     unsigned int flat',
      '           | [sizeof=24, align=4]',
      '',
    ].join('\n');
    const s = parseRecordLayouts(dump).get('struct S');
    expect(s?.get('bf')).toEqual({ offsetBits: 120, widthBits: 3 });
    expect(s?.get('fg.deep')).toEqual({ offsetBits: 128, widthBits: 1 });
    expect(s?.get('flat')).toEqual({ offsetBits: 163, widthBits: 3 });
    expect(s?.get('in.x')).toEqual({ offsetBits: 32, widthBits: -1 });
  });
});
