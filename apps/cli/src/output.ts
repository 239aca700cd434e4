/**
 * Human lines on stdout, or exactly one JSON object with `--json`. Progress (one line rewritten in
 * place, with the elapsed time) goes to stderr only when it is a terminal and --json is not given:
 * logs and pipes get the result lines and nothing else.
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

export function createOutput(json: boolean): Output {
  const tty = process.stderr.isTTY;
  let shown = false; // a progress line is on the terminal: cleared before anything else is printed
  const clearLine = () => {
    if (shown) process.stderr.write('\r\x1b[K');
    shown = false;
  };
  return {
    json,
    log: (line) => {
      clearLine();
      if (!json) console.log(line);
    },
    progress: (line) => {
      if (json || !tty) return;
      process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
      shown = true;
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
