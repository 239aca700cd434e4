/**
 * A request the registry cannot accept; `status` is the HTTP status the gateway answers with and
 * `code` a stable name for the refusal (the gateway sends it as `code`, the CLI prints it in its
 * `--json` error): program-not-found, version-not-found, version-exists, version-not-built,
 * rollout-not-found, invalid-update-point, ...; by default the status's generic one
 * (invalid-request, not-found, conflict, too-large).
 */
export class RegistryError extends Error {
  readonly code: string;

  constructor(
    readonly status: 400 | 404 | 409 | 413,
    message: string,
    code?: string,
  ) {
    super(message);
    this.name = 'RegistryError';
    const generic = { 400: 'invalid-request', 404: 'not-found', 409: 'conflict', 413: 'too-large' } as const;
    this.code = code ?? generic[status];
  }
}
