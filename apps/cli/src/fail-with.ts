import { CommanderError } from 'commander';
import { CliError, errorCode } from './errors';
import type { Output } from './output';

/**
 * Reports a failure that is not an update outcome: with --json the one object
 * `{"error": {"code", "message"}}` (DESIGN.md §9), else the message on stderr. Returns exit code 1.
 */
export function failWith(out: Output, code: string, message: string, reasons?: string[]): number {
  out.fail({ code, error: message, reasons });
  return 1;
}

/**
 * Reports an error a command let through (a refused request, an unreachable process, a bad
 * argument) the same way, with its stable code (errors.ts). A usage error commander already
 * printed on stderr is only added as JSON. Returns the exit code.
 */
export function reportError(out: Output, err: unknown): number {
  if (err instanceof CommanderError) {
    if (out.json) out.fail({ code: 'usage', error: err.message.replace(/^error: /, '') });
    return err.exitCode || 1;
  }
  const reasons = err instanceof CliError ? err.reasons : (err as { reasons?: string[] }).reasons;
  return failWith(out, errorCode(err), (err as Error).message ?? String(err), reasons);
}
