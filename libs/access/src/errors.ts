/** A request about tokens the gateway refuses; `status` is the HTTP status to answer with. */
export class AccessError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'AccessError';
  }
}
