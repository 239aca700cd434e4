// A larger C code base of our own (minilang: 24 files, function-pointer tables, varargs,
// same-named statics in five files, recursion, setjmp/longjmp, bit-fields, unions) is built
// natively and with dsu-cc, and its own test suite passes on both builds.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dsuCcPath } from '@dsu/instrument';
import { FIXTURES_ROOT, makeTempDir, removeDir } from './support/fixtures';

function make(dir: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('make', ['-C', dir, ...args], { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`make ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}

describe('minilang code base', () => {
  let work = '';
  beforeAll(() => {
    work = makeTempDir('dsu-e2e-codebase-');
  });
  afterAll(() => removeDir(work));

  it.each([
    ['cc', 'cc'],
    ['dsu-cc', dsuCcPath()],
  ])('passes its own test suite when built with %s', async (label, cc) => {
    const dir = path.join(work, label);
    fs.cpSync(path.join(FIXTURES_ROOT, 'codebase'), dir, { recursive: true, filter: (p) => !p.includes(`${path.sep}build`) });
    await make(dir, ['-j2', `CC=${cc}`]);
    const out = await make(dir, ['test', `CC=${cc}`]);
    const summary = /(\d+) passed, (\d+) failed/.exec(out);
    expect(summary?.[2]).toBe('0');
    expect(Number(summary?.[1])).toBeGreaterThanOrEqual(50);
    if (label === 'dsu-cc') {
      const model = JSON.parse(fs.readFileSync(path.join(dir, 'build/minilang.dsu.json'), 'utf8'));
      const grows = Object.keys(model.functions).filter((k) => k.endsWith('::grow'));
      expect(grows.length).toBeGreaterThanOrEqual(3);
      expect(Object.keys(model.functions).length).toBeGreaterThan(200);
    }
  }, 300_000);
});
