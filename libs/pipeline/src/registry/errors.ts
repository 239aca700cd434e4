/** A request the registry cannot accept; `status` is the HTTP status the gateway answers with. */
export class RegistryError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 413,
    message: string,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}
