import { donePerHost } from './commands/remote';
import { createOutput } from './output';

/** A terminal (or not) that keeps what is written to it, the way ora drives one. */
function fakeStderr(tty: boolean) {
  const written: string[] = [];
  const stream = {
    isTTY: tty,
    columns: 120,
    write: (s: string) => (written.push(String(s)), true),
    clearLine: () => true,
    cursorTo: () => true,
    moveCursor: () => true,
    on: () => stream,
    once: () => stream,
    removeListener: () => stream,
  };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => written.join('') };
}

/** Runs `fn` with a fake stderr; returns what went to it and to stdout. */
async function capture(tty: boolean, fn: (stderr: NodeJS.WriteStream) => Promise<void> | void) {
  const out: string[] = [];
  const saved = { CI: process.env.CI, TERM: process.env.TERM };
  delete process.env.CI; // ora stays still on CI
  process.env.TERM = 'xterm';
  const fake = fakeStderr(tty);
  const log = jest.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
  try {
    await fn(fake.stream);
  } finally {
    log.mockRestore();
    if (saved.CI !== undefined) process.env.CI = saved.CI;
    process.env.TERM = saved.TERM;
  }
  return { stderr: fake.text(), stdout: out };
}

describe('progress', () => {
  it('on a terminal: a spinner line with the step and its elapsed time, cleared before a result line', async () => {
    const r = await capture(true, async (stderr) => {
      const o = createOutput(false, stderr);
      o.progress('compile   app v2 on the compiler service');
      await new Promise((res) => setTimeout(res, 600));
      o.progress('compile   app v2 on the compiler service');
      o.log('compile   built');
    });
    expect(r.stderr).toMatch(/compile {3}app v2 on the compiler service {2}0\.[2-9] s/);
    expect(r.stdout).toEqual(['compile   built']);
  });

  it('nothing when stderr is not a terminal, or with --json', async () => {
    const piped = await capture(false, (stderr) => {
      const o = createOutput(false, stderr);
      o.progress('rollout   r1: 0/1 processes done (h1 0/1)');
      o.log('done');
    });
    expect(piped).toEqual({ stderr: '', stdout: ['done'] });
    const json = await capture(true, (stderr) => {
      const o = createOutput(true, stderr);
      o.progress('rollout   r1: 0/1 processes done (h1 0/1)');
      o.result({ ok: 1 });
    });
    expect(json).toEqual({ stderr: '', stdout: ['{"ok":1}'] });
  });

  it("a rollout's progress per host", () => {
    const t = (host: string, reported: boolean, state = reported ? 'reported' : 'commanded') =>
      ({ host, reported, state }) as never;
    expect(donePerHost({ targets: [t('h1', true), t('h1', false), t('h2', false, 'failed')] })).toBe(
      '2/3 processes done (h1 1/2, h2 1/1)',
    );
  });
});
