// Shape of the per-program, per-version behaviour tables that the native (and later the
// instrumented) fixture suites check. Tables are data: one request line -> the exact reply line.
import type { ScriptStep } from '../support/load-client';

export interface Conversation {
  /** What this conversation shows. */
  name: string;
  /** Run on one fresh connection, in order: [request line, exact expected reply line]. */
  steps: ReadonlyArray<readonly [request: string, reply: string]>;
}

export interface LoadProfile {
  /** Persistent-connection clients. */
  clients: number;
  /** Clients that reconnect every `requestsPerConnection` requests. */
  reconnectingClients?: number;
  requestsPerConnection?: number;
  durationMs: number;
  /** Walked cyclically by every client from step 0; `{c}` = client index, `{i}` = request number. */
  script: readonly ScriptStep[];
}

export interface VersionSpec {
  version: string;
  /** Run in order against one server process (state carries over between conversations). */
  conversations: readonly Conversation[];
  load: LoadProfile;
  /** Text the program writes to stderr when it exits cleanly (e.g. from an atexit callback). */
  stderrOnExit?: string;
}

export interface ProgramSpec {
  program: string;
  versions: readonly VersionSpec[];
}
