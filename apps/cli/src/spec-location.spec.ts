import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from './program';

/** `dsu patch a b --out o --spec <patch.yaml> --json`: the error it prints for that spec. */
async function patchError(yaml: string): Promise<{ code: string; message: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'dsu-spec-'));
  const spec = join(dir, 'patch.yaml');
  writeFileSync(spec, yaml);
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
  const err = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await buildProgram().parseAsync([
      'node',
      'dsu',
      'patch',
      dir,
      dir,
      '--out',
      join(dir, 'o'),
      '--spec',
      spec,
      '--json',
    ]);
    return {
      ...JSON.parse(lines[0]).error,
      message: JSON.parse(lines[0]).error.message.replace(spec, 'patch.yaml'),
    };
  } finally {
    process.exitCode = undefined;
    log.mockRestore();
    err.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('a patch.yaml error names file, line and column', () => {
  it('a YAML syntax error', async () => {
    expect((await patchError('types:\n  a: [1,\nb: }\n')).message).toMatch(/^patch\.yaml:2:6: /);
  });

  it('a key the spec does not know', async () => {
    expect((await patchError('types: {}\n\nstateTransform: x\n')).code).toBe('invalid-spec');
    expect((await patchError('types: {}\n\nstateTransform: x\n')).message).toMatch(
      /^patch\.yaml:3:1: unknown key 'stateTransform'/,
    );
  });

  it('a bad when-condition, at its key', async () => {
    expect((await patchError('when:\n  points: [top]\n  deadlineMs: -1\n')).message).toBe(
      'patch.yaml:3:3: when.deadlineMs must be a positive number of milliseconds',
    );
    expect((await patchError('frames:\n  serve:\n    locals:\n      n: {from: 3}\n')).message).toMatch(
      /^patch\.yaml:4:7: frames\.serve\.locals\.n must be/,
    );
  });
});
