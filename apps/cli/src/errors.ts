/**
 * A failure the `dsu` command reports as one JSON object with `--json` (DESIGN.md §9):
 * `{"error": {"code", "message", "reasons"?}}`. `code` is stable (scripts branch on it); the
 * message is for people and may change.
 *
 * Codes (DESIGN.md §9): usage, invalid-update-point, gateway-unreachable, unauthorized, forbidden, not-found,
 * program-not-found, version-not-found, rollout-not-found, conflict, version-exists,
 * version-not-built, version-not-failed, invalid-request, too-large, unavailable, gateway-error, timeout,
 * nothing-to-update, invalid-spec, control, bundle-unreadable, unsupported-change, key-invalid, key-not-found,
 * no-process, failed (anything else a command could not do).
 */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly reasons?: string[],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The code of an HTTP status the gateway answered with no code of its own. */
export function codeOfStatus(status: number): string {
  const byStatus: Record<number, string> = {
    400: 'invalid-request',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not-found',
    409: 'conflict',
    413: 'too-large',
    503: 'unavailable',
  };
  return byStatus[status] ?? 'gateway-error';
}

/** The stable code of any error a command let through (a CliError's own, else by its kind). */
export function errorCode(err: unknown): string {
  if (err instanceof CliError) return err.code;
  const name = (err as Error | undefined)?.name;
  // Raised by the control socket client: the process is gone, refused, or answered an error.
  if (name === 'ControlError') return 'control';
  if (name === 'UnsupportedChangeError') return 'unsupported-change';
  return 'failed';
}
