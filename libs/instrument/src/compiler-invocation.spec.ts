import { classifyInvocation } from './compiler-invocation';

describe('classifyInvocation', () => {
  it.each([
    [['-O2', '-Iinc', '-c', 'src/a.c', '-o', 'a.o'], 'compile', ['src/a.c'], 'a.o'],
    [['a.o', 'b.o', '-o', 'app', '-lm'], 'link', [], 'app'],
    [['-O2', 'main.c', 'util.c', '-o', 'app'], 'compile-and-link', ['main.c', 'util.c'], 'app'],
    [['-E', 'main.c'], 'passthrough', [], undefined],
    [['-MM', 'main.c'], 'passthrough', [], undefined],
    [['--version'], 'passthrough', [], undefined],
    [['-c', 'start.S', '-o', 'start.o'], 'passthrough', [], 'start.o'],
    [['-x', 'c', '-c', 'gen.inc', '-o', 'gen.o'], 'compile', ['gen.inc'], 'gen.o'],
    [['-include', 'config.h', '-c', 'x.c'], 'compile', ['x.c'], undefined],
  ])('%j is a %s step', (args, kind, sources, output) => {
    const inv = classifyInvocation(args);
    expect(inv.kind).toBe(kind);
    if (kind !== 'passthrough') expect(inv.sources).toEqual(sources);
    if (output !== undefined && kind !== 'passthrough') expect(inv.output).toBe(output);
  });
});
