/** Replies of the runtime's control protocol, version 1 (libs/runtime/ABI.md §6). */
export const PROTOCOL_VERSION = 1;

export interface Hello {
  ok: true;
  protocol: number;
  pid: number;
  program: string;
  buildId: string;
}

export interface ThreadStatus {
  tid: number;
  name: string;
  state: 'running' | 'blocked' | 'parked';
  lastPoint: string | null;
}

export interface AppliedPatch {
  id: string;
  fromBuildId: string;
  toBuildId: string;
  appliedAtMs: number;
  pauseUs: number;
  updatePoint: string;
}

export interface Status extends Hello {
  threads: ThreadStatus[];
  updatePoints: string[];
  patches: AppliedPatch[];
  staged: string | null;
}

export interface Staged {
  ok: true;
  staged: string;
  fromBuildId: string;
  toBuildId: string;
  functions: number;
}

export type UpdateOutcome = 'applied' | 'refused' | 'timeout' | 'failed';

/**
 * A thread whose stack an update rebuilt in the new code (stack-frame mapping, ABI.md §11). COMMIT
 * and ROLLBACK wait up to 1 s for the rebuilds; a thread not done by then has only `tid` and `done`.
 */
export interface RebuiltThread {
  tid: number;
  done: boolean;
  /** The rebuilt frames as `key@site` (e.g. `main@call:tick#0`), outermost first. */
  frames?: string[];
  /** From the commit to the start of the unwind (the thread had to reach its next stop). */
  waitUs?: number;
  unwindUs?: number;
  rebuildUs?: number;
}

/** Reply to COMMIT and ROLLBACK (and a refused STAGE, normalized to the same shape). */
export interface UpdateResult {
  ok: boolean;
  outcome: UpdateOutcome;
  patch?: string;
  pauseUs: number;
  updatePoint: string | null;
  buildId?: string;
  reasons: string[];
  error?: string;
  /** Data patches (ABI.md §10): instances transformed at the update point and how long it took. */
  instances?: number;
  transformUs?: number;
  /** Types left to be transformed on their instances' first touch. */
  lazyTypes?: number;
  /** Threads whose frames were rebuilt (only when a replaced function was active). */
  frames?: RebuiltThread[];
}

export interface StackFrame {
  pc: string;
  symbol: string | null;
  function: string | null;
}

export interface Stacks {
  ok: true;
  threads: (ThreadStatus & { frames: StackFrame[] | null; note?: string })[];
}

/** A reply with `ok: false`: the runtime's `error` says what went wrong and what to do. */
export class ControlError extends Error {
  constructor(
    message: string,
    readonly reply?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}
