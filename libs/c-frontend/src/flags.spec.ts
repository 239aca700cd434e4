import { codegenFlags, dependencyFlags, splitFlags } from './flags';

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

describe('codegenFlags and dependencyFlags', () => {
  it('keep code generation options with their values and drop what only preprocessing needs', () => {
    const real = [
      '-O2',
      '-g',
      '-Iinc',
      '-I',
      'other',
      '-DX=1',
      '-include',
      'cfg.h',
      '-target',
      'x86_64-linux-gnu',
      '-Xclang',
      '-fno-pch-timestamp',
      '-MMD',
      '-MP',
      '-MF',
      'a.d',
      '-c',
      'a.c',
      '-o',
      'a.o',
      '-Wall',
      '-Wp,-MD,x',
    ];
    expect(codegenFlags(real)).toEqual([
      '-O2',
      '-g',
      '-target',
      'x86_64-linux-gnu',
      '-Xclang',
      '-fno-pch-timestamp',
      '-Wall',
    ]);
    expect(dependencyFlags(real)).toEqual(['-MMD', '-MP', '-MF', 'a.d']);
    expect(dependencyFlags(['-MF', 'a.d'])).toEqual([]); // no -MD/-MMD: no dependency file
  });
});
