import { splitFlags } from './flags';

describe('splitFlags', () => {
  it('keeps preprocessing and semantic flags, drops output, dependency and link options', () => {
    const s = splitFlags([
      '-c',
      '-o',
      'x.o',
      '-MMD',
      '-MF',
      'x.d',
      '-MT',
      'x.o',
      '-I',
      'inc',
      '-Iinc2',
      '-DA=1',
      '-D',
      'B',
      '-UC',
      '-std=gnu11',
      '-O2',
      '-g',
      '-Wall',
      '-Werror',
      '-fno-common',
      '-m64',
      '-include',
      'cfg.h',
      '-x',
      'c',
      'src/x.c',
      '-Wl,-z,now',
      '-lm',
      '-L/usr/lib',
      '-oout.o',
    ]);
    expect(s.preprocess).toEqual([
      '-I',
      'inc',
      '-Iinc2',
      '-DA=1',
      '-D',
      'B',
      '-UC',
      '-std=gnu11',
      '-O2',
      '-g',
      '-Wall',
      '-Werror',
      '-fno-common',
      '-m64',
      '-include',
      'cfg.h',
    ]);
    expect(s.semantic).toEqual(['-std=gnu11', '-fno-common', '-m64']);
    expect(s.inputs).toEqual(['src/x.c']);
  });
});
