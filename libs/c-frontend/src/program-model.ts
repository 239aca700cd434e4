/**
 * The program model (DESIGN.md §3): what the C front end learns about one program version.
 * Written next to every executable dsu-cc links (`<exe>.dsu.json`) and stored as an artifact;
 * patch-gen diffs two of them, analysis reads them.
 */
export const PROGRAM_MODEL_FORMAT = 1;

export interface ProgramModel {
  format: typeof PROGRAM_MODEL_FORMAT;
  program: string;
  buildId: string;
  units: UnitModel[];
  /** Keyed `unit::name` for static functions, `name` otherwise. */
  functions: Record<string, FunctionModel>;
  /** Keyed like functions; function-local statics as `unit::function::name`. */
  globals: Record<string, GlobalModel>;
  /**
   * Keyed `struct conn`, `union u`, `enum e`, or the typedef name. When two units define the same
   * tag with different layouts, the later one is keyed `unit::struct conn` (see `warnings`).
   */
  types: Record<string, TypeModel>;
  /** Added: functions configured as transactions (`dsu build --transaction FUNC`). */
  transactions?: string[];
  /** Non-fatal merge findings (e.g. same struct tag with different layouts in two units). */
  warnings?: string[];
}

export interface UnitModel {
  /** Source path relative to the build directory. */
  path: string;
  /** Short id used to give statics unique exported names. */
  id: string;
  /** The exact compiler flags of the real compile. */
  flags: string[];
}

export interface FunctionModel {
  key: string;
  name: string;
  unit: string;
  isStatic: boolean;
  signature: string;
  /** sha256 of the body's tokens: insensitive to whitespace, comments and line numbers. */
  bodyHash: string;
  /** Keys of program functions called directly (statics resolved within the unit). */
  calls: string[];
  /** Added: names of functions called directly that no unit of the program defines (libc, ...). */
  externalCalls?: string[];
  /**
   * Call sites whose callee is not a direct function reference: the callee's type as spelled
   * (`handler_fn`), and (added) the fully desugared pointer type when it differs (`int (*)(int)`).
   */
  indirectCalls: { pointerType: string; canonicalType?: string }[];
  addressTaken: boolean;
  variadic: boolean;
  /** Added: parameter names in order (part of the body hash: swapping names changes meaning). */
  params?: string[];
  /** Added: declared `inline`. */
  isInline?: boolean;
  /** Type keys accessed concretely: member access, sizeof, locals/arrays of the type (not pointers). */
  typesUsed: string[];
  /** Global keys; best effort. Taking a global's address (`&g`) counts as a write. */
  globalsRead: string[];
  globalsWritten: string[];
  updatePoints: string[];
  transactions: string[];
  /** Added: what the body does, in source order (the safety analysis' prior and future effects). */
  flow?: FlowStep[];
  /** Added: the body's outermost loops, as offsets relative to the body's `{` (`[start, end)`). */
  loops?: { start: number; end: number }[];
}

/**
 * One thing a function body does, at a place in it. `at` orders the steps: a byte offset relative
 * to the body's `{` where the step completes (a call completes after its arguments, so `f(g())`
 * has g before f). `line` is the source line, for messages.
 * - `call`: a direct call of a program function (name = its key); `icall`: an indirect call (name
 *   = the callee's pointer type, desugared); `point`: `DSU_UPDATE_POINT(name)`; `block`: a
 *   wrapped blocking call, an implicit update point named after the callee (`poll`);
 *   `txn-begin` / `txn-end`: transaction markers (name = label);
 * - `type`: a concrete use of a program type (member access, sizeof, local of the type);
 *   `read` / `write`: a use of a program global (name = its key).
 */
export interface FlowStep {
  kind: 'call' | 'icall' | 'point' | 'block' | 'txn-begin' | 'txn-end' | 'type' | 'read' | 'write';
  name: string;
  at: number;
  line: number;
}

export interface GlobalModel {
  key: string;
  name: string;
  unit: string;
  type: string;
  linkage: 'external' | 'internal' | 'function-static';
  /** Added: for function-local statics, the key of the enclosing function. */
  function?: string;
  /** Added: hash of the initializer's tokens (absent without an initializer). */
  initHash?: string;
  /** Added: the initializer as written (at most 200 characters), for messages. */
  init?: string;
}

export interface FieldModel {
  name: string;
  type: string;
  offsetBits: number;
  /** Bits the field occupies (bit-field width; 0 for a flexible array member). */
  sizeBits: number;
  /** Added: the field is a bit-field. */
  bitfield?: boolean;
  /** Added: enums list their enumerators as fields with `value` (offsetBits/sizeBits are 0). */
  value?: number;
}

export interface TypeModel {
  key: string;
  kind: 'struct' | 'union' | 'enum' | 'typedef';
  fields: FieldModel[];
  size: number;
  align: number;
  layoutHash: string;
  /**
   * Bytes reserved for the type in the instrumented program (sizeof with the room for growth and
   * the version tag); equals `size` for types without room. For updatable structs, `size` is the
   * bytes the fields use (up to the room) as the instrumented program lays them out.
   */
  capacity: number;
  /** Added: where instances come from that allocation tracking cannot see (reported, not skipped). */
  untrackedSources?: string[];
  /** Updatable structs: slop asked for in the source (`DSU_ROOM(n)`), bytes. */
  slop?: number;
  /** Why the type is not updatable (not a struct, packed, raw I/O of whole instances, ...). */
  updatable: boolean;
  notUpdatableReason?: string;
  /** Added: for typedefs, the aliased type (normalized clang spelling). */
  target?: string;
  /** Added: `__attribute__((packed))` or `#pragma pack`. */
  packed?: boolean;
  /** Added: a typedef of an incomplete (opaque) type; size, align and capacity are 0. */
  incomplete?: boolean;
  /** Added: unit that defined the type first. */
  unit?: string;
}

/** Key of a function or global: statics are qualified by their unit so same-named ones stay apart. */
export function symbolKey(name: string, unit: string, isStatic: boolean): string {
  return isStatic ? `${unit}::${name}` : name;
}
