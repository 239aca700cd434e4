import { declaratorEnd, outermostLoopBodyStart } from './c-scan';

const range = (buf: Buffer, text: string) => {
  const start = buf.indexOf(text);
  return { start, end: start + Buffer.byteLength(text) };
};

describe('C scanning helpers', () => {
  it('finds where an asm label goes after a declarator', () => {
    const cases: [string, string, string][] = [
      ['static int tbl[4][2] = { 0 };', 'tbl', 'static int tbl[4][2]'],
      ['static void (*handler)(int, char *) = 0;', 'handler', 'static void (*handler)(int, char *)'],
      ['static const char *names[] __attribute__((unused)) = { "a" };', 'names', 'static const char *names[]'],
      ['static int a = 1, b = 2;', 'a', 'static int a'],
    ];
    for (const [src, name, upTo] of cases) {
      const buf = Buffer.from(src);
      expect(declaratorEnd(buf, range(buf, name), buf.length)).toBe(Buffer.byteLength(upTo));
    }
  });

  it("picks the function's main loop, skipping small loops without a block body", () => {
    const src = 'void serve(void) { int i; for (i = 0; i < 8; i++) x[i] = 0; while (ready()) { step(); } for (;;) { "}"; if (a) { b(); } poll(); } }';
    const buf = Buffer.from(src);
    const r = outermostLoopBodyStart(buf, { start: buf.indexOf('{'), end: buf.length });
    expect(r).toEqual({ offset: buf.indexOf('for (;;) {') + 'for (;;) {'.length });
    const doLoop = Buffer.from('void f(void) { do { g(); } while (h()); }');
    expect(outermostLoopBodyStart(doLoop, { start: doLoop.indexOf('{'), end: doLoop.length })).toEqual({ offset: doLoop.indexOf('do {') + 4 });
    const none = Buffer.from('void f(void) { g(); }');
    expect(outermostLoopBodyStart(none, { start: none.indexOf('{'), end: none.length })).toEqual({ error: expect.stringMatching(/no loop/) });
  });
});
