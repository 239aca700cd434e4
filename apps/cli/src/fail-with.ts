import type { Output } from './output';

/**
 * Reports a failure that is not an update outcome: with --json the one object
 * `{"error": {"code", "message"}}` (DESIGN.md §9), else the message on stderr. Returns exit code 1.
 */
export function failWith(out: Output, code: string, message: string): number {
  if (out.json) out.result({ error: { code, message } });
  else console.error(`dsu: ${message}`);
  return 1;
}
