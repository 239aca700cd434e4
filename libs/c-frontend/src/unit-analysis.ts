import type { FunctionFrameInfo } from './frame-sites';
import type { MarkedRegion } from './line-markers';
import type { FunctionModel, GlobalModel, TypeModel, UnitModel } from './program-model';

/** A byte range `[start, end)` in the unit's `.i` buffer. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface AnalyzeOptions {
  /** Path of the unit's source as the compiler sees it (absolute, or relative to `cwd`). */
  source: string;
  /** The exact flags of the real compile (output/dependency options are dropped). */
  flags: string[];
  /** Working directory of the real compile. */
  cwd: string;
  /** Unit path used in keys (`unit::name`); default: `source` relative to `cwd`. */
  unitPath?: string;
  /** clang to use; default {@link findClang}. */
  clang?: string;
  /** Compiler for the layout probe (the real compiler); default `$DSU_LAYOUT_CC`, else `cc`. Falls back to clang. */
  layoutCompiler?: string;
  /** Callee-name prefixes of update points (called with a string literal). */
  updatePointPrefixes?: string[];
  /** Callee-name prefixes of transaction begin / end calls. */
  txnBeginPrefixes?: string[];
  txnEndPrefixes?: string[];
  /** Names of blocking functions whose calls are reported. */
  blockingFunctions?: string[];
  /** Names starting with these prefixes are runtime internals (e.g. `dsu__site_`): not in the model. */
  internalPrefixes?: string[];
  /** Headers of the DSU runtime (by file name): treated like system headers. Default `['dsu.h']`. */
  runtimeHeaders?: string[];
  /** Dump size above which the streaming decoder is used (default 16 MiB). */
  streamThresholdBytes?: number;
  forceStreaming?: boolean;
  /** Extra flags for the preprocessing run only, e.g. `-MD -MF x.d -MT x.o` to write a dependency file on the way. */
  preprocessFlags?: string[];
  /**
   * Return as soon as the AST is decoded and finish the layout probe in the background: the
   * type models fill in when `layoutDone` resolves (dsu-cc compiles the unit meanwhile).
   */
  deferLayout?: boolean;
  /** Decode each definition's stack-frame facts too ({@link UnitFunction.frame}), for frame mapping. */
  frames?: boolean;
  /** Skip the layout probe (sizes/offsets stay 0); for callers that only need ranges. */
  skipLayout?: boolean;
  /** Give clang the whole `.i` for the JSON AST (default: unused header prototypes blanked, see {@link blankUnusedPrototypes}). */
  keepUnusedPrototypes?: boolean;
}

/** A program function defined in the unit, with the ranges the instrumenter rewrites. */
export interface UnitFunction {
  model: FunctionModel;
  /** From the first specifier to the closing brace. */
  definition: ByteRange;
  /** The compound statement, braces included. */
  body: ByteRange;
  /** The declarator's name token. */
  name: ByteRange;
  /** Its locals and capture/resume sites (with AnalyzeOptions.frames). */
  frame?: FunctionFrameInfo;
  /**
   * The bodies of its outermost loops, in source order: a block (`braced`, range from `{` to
   * `}`) or a single statement (range through its `;`), with the size of the whole loop.
   */
  loopBodies?: { start: number; end: number; braced: boolean; loopSize: number }[];
}

export interface CallSite {
  /** Key of the enclosing function. */
  function: string;
  /** The whole call expression. */
  call: ByteRange;
  /** The callee expression (for direct calls: the name token). */
  callee: ByteRange;
  direct: boolean;
  calleeName?: string;
  /** Key the callee resolves to (statics of this unit are `unit::name`). */
  calleeKey?: string;
  /** For indirect calls: the callee's pointer type. */
  pointerType?: string;
}

export interface FunctionReference {
  /** Enclosing function key; undefined in a global initializer. */
  function?: string;
  name: string;
  key: string;
  range: ByteRange;
  /** `call`: the callee of a direct call; `address`: any other use (the address escapes). */
  use: 'call' | 'address';
}

export interface MarkerCall {
  function: string;
  kind: 'update-point' | 'txn-begin' | 'txn-end';
  /** The string literal's value. */
  label: string;
  calleeName: string;
  call: ByteRange;
  callee: ByteRange;
  /**
   * For `DSU_UPDATE_POINT` as dsu.h expands it (`do { static struct dsu_point_site dsu__site_ …;
   * … dsu__update_point("x"); } while (0)`): the whole `do … while (0)` statement, without the `;`.
   */
  statement?: ByteRange;
}

export interface NamedCall {
  function: string;
  name: string;
  call: ByteRange;
  callee: ByteRange;
}

export interface StaticVariable {
  key: string;
  name: string;
  /** Enclosing function key for function-local statics. */
  function?: string;
  type: string;
  definition: ByteRange;
  nameRange: ByteRange;
}

/**
 * Every declaration of a program variable: file-scope definitions and redeclarations (extern,
 * static, tentative) and function-local statics. The instrumenter renames statics at every
 * declaration; the patch generator turns them all into declarations of the running program's.
 */
export interface VariableDeclaration {
  key: string;
  name: string;
  function?: string;
  storage: 'static' | 'extern' | 'none';
  /** `extern` without initializer is a declaration; everything else defines (or tentatively defines). */
  isDefinition: boolean;
  /** This declaration's own type (`const char[]` for `extern const char t[];`, `const char[4]` once defined). */
  type?: string;
  /** From the first specifier to the end of the declarator or initializer. */
  definition: ByteRange;
  nameRange: ByteRange;
}

/** Every file-scope declaration of a function in program code (prototypes and definitions). */
export interface FunctionDeclaration {
  key: string;
  name: string;
  isDefinition: boolean;
  /** From the first specifier (e.g. `static`) to the end of the declarator or body. */
  range: ByteRange;
  nameRange: ByteRange;
}

/** A use of a program global, file static or function-local static (by its key). */
export interface VariableReference {
  key: string;
  /** Enclosing function key; undefined in a global initializer. */
  function?: string;
  range: ByteRange;
}

/**
 * A struct definition of program code and how dsu-cc treats it: updatable ones get room for
 * growth (trailing slop plus a 4-byte version tag) inserted before the closing brace.
 */
export interface RecordInfo {
  key: string;
  updatable: boolean;
  notUpdatableReason?: string;
  /** Slop requested in the source (`DSU_ROOM(n)`), bytes. */
  slop?: number;
  /** Offset of the `{` and of the `}` of the definition. */
  open: number;
  /** Start of the top-level declaration that contains the definition (`typedef struct …`). */
  declStart: number;
  /** End of that declaration (after its `;` when there is one). */
  declEnd: number;
  close: number;
  /** C spelling (`struct conn`, or the typedef name of an unnamed struct). */
  spelling: string;
  /** Tag and enum definitions inside the body, which the struct must name through its room's shape. */
  nested?: NestedDefinition[];
}

/**
 * A tag or enum defined inside a struct body (`enum { A, B } state`): its definition's range
 * (keyword to `}`) and an access path whose type is it: `member` (dotted through unnamed member
 * structs), dereferenced `pointers` times after indexing `dimensions` times.
 */
export interface NestedDefinition {
  start: number;
  end: number;
  member: string;
  pointers: number;
  dimensions: number;
}

/** A call of malloc/calloc/realloc in program code, with the updatable type it allocates if known. */
export interface AllocSite {
  function: string;
  name: 'malloc' | 'calloc' | 'realloc';
  call: ByteRange;
  callee: ByteRange;
  /** Type key: the pointee of the pointer the result is converted to, else the `sizeof` operand. */
  typeKey?: string;
}

/** Whole instances of a program type handed to a function as raw bytes or to code outside the program. */
export interface RawUse {
  type: string;
  callee: string;
  function: string;
  /** `io`: read/write/send/recv/fread/fwrite/memcpy with a byte buffer; `external`: the callee's parameter has the type. */
  kind: 'io' | 'external';
}

/**
 * Where program functions touch instances of program record types, for lazy transformation
 * (`dsu patch --transform lazy`): the patch inserts a version-tag check before the first concrete
 * use of each pointer and stamps instances its own code creates.
 */
export interface ObjectUses {
  /**
   * A member access or a whole-object dereference. `base` is the pointer (`arrow`, `deref`) or
   * the object (`dot`); `type` the record key (or typedef name) of the object. `baseVar`: the
   * decl id when the pointer is a parameter or local variable; `root` (dot): what the object
   * path starts from.
   */
  uses: {
    function: string;
    type: string;
    via: 'arrow' | 'dot' | 'deref';
    base: ByteRange;
    baseVar?: string;
    root?: 'global' | 'local' | 'call' | 'other';
  }[];
  /** Parameters and locals that point to a record type: where they get their values. */
  vars: {
    function: string;
    id: string;
    name: string;
    type: string;
    param: boolean;
    /** The initializer and the right-hand side of every plain `=` to the variable. */
    assigns: ByteRange[];
    /** Written otherwise (`++`, `+=`, address taken): its uses are checked where they happen. */
    unstable: boolean;
  }[];
  /**
   * Instances created by the function's own code: local objects (`at`: end of the declarator
   * when there is no initializer) and initializer lists (`close`: the `}`), of a record type.
   */
  creations: {
    function: string;
    type: string;
    at?: number;
    close?: number;
    empty?: boolean;
    count?: number;
  }[];
  /** memset/memcpy/memmove whose destination points to a record type. */
  wholeWrites: { function: string; type: string; name: string; call: ByteRange; callee: ByteRange }[];
}

export interface UnitAnalysis {
  unit: UnitModel;
  /** Concrete uses of record instances (lazy transformation). */
  objects?: ObjectUses;
  /** Struct definitions of program code with the ranges the room edit needs. */
  records: RecordInfo[];
  /** malloc/calloc/realloc calls in program functions. */
  allocSites: AllocSite[];
  /** Every reference to free/realloc in program code other than the allocation sites' callees. */
  freeRefs: { function?: string; name: 'free' | 'realloc'; range: ByteRange }[];
  /** Raw uses of whole instances (they make the type non-updatable program-wide). */
  rawUses: RawUse[];
  /** Pointers to program types obtained from calls other than malloc/calloc/realloc (untracked memory). */
  untracked: { type: string; function: string; source: string }[];
  /**
   * Probes sizes and offsets again on the instrumented text (types grown by their room): sets
   * `size` (bytes the fields use) and `capacity` (sizeof with room) of updatable types, and the
   * sizes/offsets of every other type as the instrumented program lays them out. `roomy`: the
   * keys of the types that were given room (default: every updatable record). Bit-field offsets
   * of named records come from the same clang run, so with `skipLayout` this one probe fills in
   * the whole layout (what dsu-cc does: one probe per unit instead of two).
   */
  probeInstrumented?: (text: Buffer, cwd: string, roomy?: ReadonlySet<string>) => Promise<void>;
  /** The preprocessed unit; all ranges are byte offsets into it. */
  preprocessed: Buffer;
  regions: MarkedRegion[];
  functions: UnitFunction[];
  /** Globals defined in the unit (external, file statics, function-local statics). */
  globals: GlobalModel[];
  /** Names of globals only declared here (`extern int g;`) and read/written by the unit. */
  types: TypeModel[];
  callSites: CallSite[];
  references: FunctionReference[];
  markers: MarkerCall[];
  blockingCalls: NamedCall[];
  threadCreates: NamedCall[];
  /** File statics and function-local statics with their ranges. */
  statics: StaticVariable[];
  /** Every declaration of a program variable, redeclarations included. */
  variables: VariableDeclaration[];
  /** File-scope function declarations (prototypes and definitions), e.g. to rename statics. */
  declarations: FunctionDeclaration[];
  /** Every reference to a program variable (globals, file statics, function-local statics). */
  variableReferences: VariableReference[];
  /** With `deferLayout`: resolves when sizes, offsets and layout hashes of `types` are filled in. */
  layoutDone?: Promise<void>;
  stats: {
    preprocessedBytes: number;
    astBytes: number;
    astMode: 'memory' | 'stream';
    keptDecls: number;
    preprocessMs: number;
    astMs: number;
    layoutMs: number;
    /** The compiler whose layouts the model holds (`cc` unless it failed and clang stood in). */
    layoutCompiler?: string;
    /** How the probe got its types in scope: `stripped-bodies` (normal), `whole-source`, `clang-i`. */
    layoutMethod?: string;
    /** Why the preferred layout compiler was not used. */
    layoutFallbackReason?: string;
  };
}
