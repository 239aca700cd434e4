import { tmpdir } from 'node:os';
import { runBuild } from './run-build';

describe('runBuild', () => {
  it('reassembles lines that arrive in pieces, per stream, and flushes the last one', async () => {
    const lines: string[] = [];
    await runBuild({
      command:
        "printf 'cat: ' >&2; sleep 0.2; printf out1; sleep 0.2; printf '/x/key' >&2; sleep 0.2; printf ': No such file\\n' >&2; printf '\\nlast'",
      cwd: tmpdir(),
      env: process.env,
      onOutput: (l) => lines.push(l),
      timeoutMs: 10_000,
    });
    expect(lines).toEqual(['cat: /x/key: No such file', 'out1', 'last']);
  });

  it('says why it stopped a build, with its last lines', async () => {
    await expect(
      runBuild({
        command: 'echo started; exit 3',
        cwd: tmpdir(),
        env: process.env,
        onOutput: () => undefined,
        timeoutMs: 10_000,
      }),
    ).rejects.toThrow(/failed with exit code 3; last output:\nstarted/);
  });
});
