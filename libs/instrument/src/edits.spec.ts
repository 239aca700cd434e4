import { applyEdits, OverlappingEditsError, wrapEdits } from './edits';

describe('applyEdits', () => {
  const src = Buffer.from('int f(void) { return g(1); } /* é */ int g(int x) { return x; }');

  it('applies replacements and insertions by original byte offsets, whatever the planning order', () => {
    const g = src.indexOf('g(1)');
    const end = src.length;
    const out = applyEdits(src, [
      { start: end, end, text: ' /*tail*/' },
      { start: g, end: g + 1, text: 'SLOT_g' },
      { start: 0, end: 0, text: '/*a*/' },
      { start: 0, end: 0, text: '/*b*/' },
    ]);
    expect(out.toString()).toBe('/*a*//*b*/int f(void) { return SLOT_g(1); } /* é */ int g(int x) { return x; } /*tail*/');
  });

  it('nests wraps that start or end at one offset by their extent, whatever the planning order (dnsmasq daemon->cnames)', () => {
    const text = Buffer.from('x = d->cnames; y = f(a);');
    const d = { start: 4, end: 5 };
    const member = { start: 4, end: 13 };
    const call = { start: 19, end: 23 };
    const out = applyEdits(text, [
      ...wrapEdits(d, 'chk_daemon(', ')'), // planned inner-first, as the lazy checks were
      ...wrapEdits(member, 'chk_cname(', ')'),
      { start: 19, end: 19, text: '/*plain*/' },
      ...wrapEdits(call, 'chk_crec(', ')'),
      ...wrapEdits(call, '({ nomap++; v = ', '; nomap--; v; })'),
    ]);
    expect(out.toString()).toBe(
      'x = chk_cname(chk_daemon(d)->cnames); y = /*plain*/chk_crec(({ nomap++; v = f(a); nomap--; v; }));',
    );
  });

  it('refuses overlapping replacements and out-of-range edits', () => {
    expect(() => applyEdits(src, [{ start: 0, end: 5, text: '' }, { start: 3, end: 8, text: '' }])).toThrow(OverlappingEditsError);
    expect(() => applyEdits(src, [{ start: 0, end: src.length + 1, text: '' }])).toThrow(RangeError);
    // Touching is fine: an insertion at the end of a replacement.
    expect(applyEdits(Buffer.from('abc'), [{ start: 0, end: 1, text: 'X' }, { start: 1, end: 1, text: 'Y' }]).toString()).toBe('XYbc');
  });
});
