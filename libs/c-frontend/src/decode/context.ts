import { symbolKey, type FlowStep, type UnitModel } from '../program-model';

/**
 * What several decode visitors of one unit share, and nothing else: the unit and its text, the
 * linkage facts declarations establish (static and defined function names, the global a VarDecl
 * id stands for) and the runtime-internal name test. C declares before use, so a body visited
 * after its declarations finds these complete enough.
 */
export class DecodeContext {
  /** File-static function names (their keys are `unit::name`). */
  readonly staticFns = new Set<string>();
  /** Functions this unit defines (their calls are not libc's blocking or freeing calls). */
  readonly definedFns = new Set<string>();
  /** Functions declared in program code (prototypes or definitions): their calls are the program's. */
  readonly programFns = new Set<string>();
  /** VarDecl id → global key (program globals and local statics, local externs). */
  readonly globalIds = new Map<string, string>();

  constructor(
    readonly unit: UnitModel,
    /** The preprocessed unit: every offset points into it. */
    readonly buf: Buffer,
    private readonly internal: string[],
  ) {}

  /** A runtime internal (`dsu__…`): kept out of the model. */
  isInternal(name: string): boolean {
    return this.internal.some((p) => name.startsWith(p));
  }

  /** The key a function name resolves to in this unit (statics are `unit::name`). */
  fnKey(name: string): string {
    return symbolKey(name, this.unit.path, this.staticFns.has(name));
  }
}

/** The state of the function whose body is being visited; the body visitors fill it in. */
export interface FnCtx {
  key: string;
  name: string;
  calls: Set<string>;
  indirect: { pointerType: string; canonicalType?: string }[];
  typesUsed: Set<string>;
  read: Set<string>;
  written: Set<string>;
  updatePoints: string[];
  transactions: string[];
  /** Offset of the body's `{`: flow steps and loops are relative to it. */
  bodyStart: number;
  flow: FlowStep[];
  loops: { start: number; end: number }[];
  /** The bodies of the outermost loops (absolute offsets; a block's range is its braces). */
  loopBodies: { start: number; end: number; braced: boolean; loopSize: number }[];
  /** Loops around the node being visited. */
  loopDepth: number;
}

/** Records a flow step of the function being decoded, at an absolute offset of the unit (lines come later). */
export function addStep(ctx: FnCtx, kind: FlowStep['kind'], name: string, offset: number): void {
  ctx.flow.push({ kind, name, at: offset - ctx.bodyStart, line: 0 });
}
