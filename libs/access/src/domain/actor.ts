/** Who did something, as the audit log records it: a token (a user or a CI job) or a service. */
export interface Actor {
  kind: 'token' | 'service';
  /** A token id (`tok_...`) or a service name (`checker`). */
  id: string;
  name: string;
}

/** The actor of an authenticated request. */
export interface TokenActor extends Actor {
  kind: 'token';
  scopes: string[];
}
