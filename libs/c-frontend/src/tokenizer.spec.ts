import { hashTokens, stripFunctionBodies, tokenize } from './tokenizer';

describe('C tokenizer for body hashes', () => {
  it('keeps tokens with exact spelling and drops whitespace, comments and line markers', () => {
    const src = Buffer.from(
      '{ /* c */ x->y += 0x1fUL; // z\n# 12 "a.c" 2\n  s = L"a\\"b" u8"q" \'\\n\'; f(a,...);\n#pragma omp parallel\n  1.5e+3f; a<<=b; }',
    );
    expect(tokenize(src)).toEqual([
      '{',
      'x',
      '->',
      'y',
      '+=',
      '0x1fUL',
      ';',
      's',
      '=',
      'L"a\\"b"',
      'u8"q"',
      "'\\n'",
      ';',
      'f',
      '(',
      'a',
      ',',
      '...',
      ')',
      ';',
      '#pragma omp parallel',
      '1.5e+3f',
      ';',
      'a',
      '<<=',
      'b',
      ';',
      '}',
    ]);
  });

  it('tokenizes a byte range of a buffer (offsets are bytes, not UTF-16 units)', () => {
    const buf = Buffer.from('/* é ü */ int f(void) { return "ä"[0]; }');
    const start = buf.indexOf('{');
    const toks = tokenize(buf, start, buf.length);
    expect(toks[0]).toBe('{');
    expect(Buffer.from(toks[2], 'latin1').toString('utf8')).toBe('"ä"');
  });

  it('hashes token sequences independently of layout', () => {
    const h = (s: string) => hashTokens(tokenize(Buffer.from(s)));
    expect(h('{ return a+b; }')).toBe(h('{\n  return a + b ;  /* x */\n}'));
    expect(h('{ return a+b; }')).not.toBe(h('{ return a-b; }'));
    expect(h('{ return ab; }')).not.toBe(h('{ return a b; }'));
    expect(h('{ return "a b"; }')).not.toBe(h('{ return "a  b"; }'));
  });

  it('strips function bodies but keeps types, initializers and attributes', () => {
    const src = [
      'struct s { int a; };',
      'enum __attribute__((packed)) e { A, B };',
      'static struct s v = (struct s){ 1 };',
      'int (*getfn(void))(int) { return 0; }',
      'static int f(int x) { if (x) { return 1; } return 2; }',
      'int arr[] = { 1, 2 };',
      'int main(void) { struct t { int q; } z = { 0 }; return z.q; }',
    ].join('\n');
    expect(stripFunctionBodies(Buffer.from(src)).toString()).toBe(
      [
        'struct s { int a; };',
        'enum __attribute__((packed)) e { A, B };',
        'static struct s v = (struct s){ 1 };',
        'int (*getfn(void))(int) ;',
        'static int f(int x) ;',
        'int arr[] = { 1, 2 };',
        'int main(void) ;',
      ].join('\n'),
    );
  });
});
