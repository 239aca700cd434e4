import ora from 'ora';

/**
 * Human lines on stdout, or exactly one JSON object with `--json`. Progress (a spinner line with
 * the elapsed time, ora) goes to stderr only when it is a terminal and --json is not given: logs
 * and pipes get the result lines and nothing else.
 */
export interface Output {
  json: boolean;
  log(line: string): void;
  progress(line: string): void;
  result(value: unknown): void;
  /**
   * A failure the command reports itself (the caller returns its exit code): with --json the one
   * object `{"error": {"code", "message", "reasons"?}}` on stdout (DESIGN.md §9), else the message
   * and its reasons on stderr. `code` defaults to `failed`.
   */
  fail(value: { error: string; code?: string; reasons?: string[] }): void;
}

/**
 * The progress line on a terminal: an ora spinner with the step's text and the time since the
 * step began (a step is the line's first word, digits aside: `[3] cc main.c` and `[4] cc util.c`
 * are one build step). Stopped (and its line cleared) before anything else is printed.
 */
function spinnerLine(stream: NodeJS.WriteStream) {
  let spinner: ora.Ora | undefined;
  let timer: NodeJS.Timeout | undefined;
  let step = '';
  let since = 0;
  let text = '';
  const render = () => {
    const width = (stream.columns || 100) - 14;
    return `${text.length > width ? text.slice(0, width - 1) + '…' : text}  ${((Date.now() - since) / 1000).toFixed(1)} s`;
  };
  return {
    show(line: string) {
      const key = (line.trim().split(/\s+/)[0] ?? '').replace(/\d+/g, '');
      if (key !== step || !spinner) [step, since] = [key, Date.now()];
      text = line.trim();
      if (!spinner) {
        spinner = ora({ stream, text: render() }).start();
        // the elapsed time moves on between updates; unref'd: it never keeps the command alive
        timer = setInterval(() => spinner && (spinner.text = render()), 250);
        timer.unref();
      } else spinner.text = render();
    },
    clear() {
      if (!spinner) return;
      clearInterval(timer);
      spinner.stop();
      spinner = undefined;
    },
  };
}

/** The output of one command; `stderr` is where progress goes (a test's fake terminal). */
export function createOutput(json: boolean, stderr: NodeJS.WriteStream = process.stderr): Output {
  const tty = stderr.isTTY === true;
  const line = spinnerLine(stderr);
  const clearLine = () => line.clear();
  return {
    json,
    log: (l) => {
      clearLine();
      if (!json) console.log(l);
    },
    progress: (l) => {
      if (json || !tty) return;
      line.show(l);
    },
    result: (value) => {
      clearLine();
      if (json) console.log(JSON.stringify(value));
    },
    fail: (value) => {
      clearLine();
      const error = {
        code: value.code ?? 'failed',
        message: value.error.replace(/^dsu: /, ''),
        ...(value.reasons?.length ? { reasons: value.reasons } : {}),
      };
      if (json) console.log(JSON.stringify({ error }));
      else {
        console.error(`dsu: ${error.message}`);
        for (const r of value.reasons ?? []) console.error(`  - ${r}`);
      }
    },
  };
}
