/** Human lines on stdout, or exactly one JSON object with `--json`. Progress goes to stderr. */
export interface Output {
  json: boolean;
  log(line: string): void;
  progress(line: string): void;
  result(value: unknown): void;
  /** A failure the command reports itself (exit 1), as JSON or as lines. */
  fail(value: { error: string; reasons?: string[] }): void;
}

export function createOutput(json: boolean): Output {
  const tty = process.stderr.isTTY;
  return {
    json,
    log: (line) => {
      if (!json) console.log(line);
    },
    progress: (line) => {
      if (json) return;
      if (tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
      else process.stderr.write(line + '\n');
    },
    result: (value) => {
      if (tty && !json) process.stderr.write('\r\x1b[K');
      if (json) console.log(JSON.stringify(value));
    },
    fail: (value) => {
      if (json) console.log(JSON.stringify(value));
      else {
        console.error(value.error);
      }
    },
  };
}
