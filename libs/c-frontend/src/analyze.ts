import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve as resolvePath } from 'node:path';
import { dumpTopLevel, run, type AstLoc, type AstNode } from './ast';
import { findClang } from './clang';
import { QUIET_FLAGS, splitFlags } from './flags';
import { parseLineMarkers, regionAt, type MarkedRegion } from './line-markers';
import { parseRecordLayouts, presumedLoc, probeConstants, withTempFile } from './layout';
import {
  symbolKey,
  type FieldModel,
  type FunctionModel,
  type GlobalModel,
  type TypeModel,
  type UnitModel,
} from './program-model';
import { hashTokens, scanTokens, stripFunctionBodies, tokenize } from './tokenizer';

/** A byte range `[start, end)` in the unit's `.i` buffer. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Blocking calls wrapped by dsu-cc (DESIGN.md §4). */
export const DEFAULT_BLOCKING_FUNCTIONS = [
  'poll',
  'ppoll',
  'select',
  'pselect',
  'epoll_wait',
  'epoll_pwait',
  'accept',
  'accept4',
  'read',
  'recv',
  'recvfrom',
  'recvmsg',
  'nanosleep',
  'clock_nanosleep',
  'sleep',
  'usleep',
  'pthread_cond_wait',
  'pthread_cond_timedwait',
  'pthread_join',
  'waitpid',
  'wait',
  'sem_wait',
  'sem_timedwait',
  'sigwait',
  'sigwaitinfo',
  'sigtimedwait',
  'pause',
  'sigsuspend',
];

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
  creations: { function: string; type: string; at?: number; close?: number; empty?: boolean; count?: number }[];
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

const BUILTIN = /^__(builtin|atomic|sync)_/;
const ALLOC = new Set(['malloc', 'calloc', 'realloc']);
/** Calls that move whole instances as raw bytes (layout-dependent I/O). */
export const RAW_IO_FUNCTIONS = new Set([
  'read',
  'write',
  'pread',
  'pwrite',
  'send',
  'recv',
  'sendto',
  'recvfrom',
  'fread',
  'fwrite',
  'memcpy',
  'memmove',
  'mmap',
]);
/** Outside functions that may see instance pointers without depending on the layout. */
export const LAYOUT_NEUTRAL_FUNCTIONS = new Set([
  'free',
  'memset',
  'memcmp',
  'qsort',
  'bsearch',
  'printf',
  'fprintf',
  'snprintf',
  'sprintf',
  'dprintf',
  'pthread_create',
  'pthread_mutex_lock',
  'pthread_mutex_unlock',
  'realloc',
]);

export const normalizeType = (t: string): string =>
  t
    .replace(/\((unnamed|anonymous)( \w+)? at [^)]*\)/g, '($1$2)')
    .replace(/\s+/g, ' ')
    .trim();

const rangeOf = (n: { range?: { begin: AstLoc; end: AstLoc } }): ByteRange => ({
  start: n.range?.begin.offset ?? -1,
  end: (n.range?.end.offset ?? -1) + (n.range?.end.tokLen ?? 0),
});
const locRange = (l: AstLoc | undefined): ByteRange => ({
  start: l?.offset ?? -1,
  end: (l?.offset ?? -1) + (l?.tokLen ?? 0),
});

function stripCasts(n: AstNode | undefined): AstNode | undefined {
  while (
    n &&
    (n.kind === 'ImplicitCastExpr' || n.kind === 'ParenExpr' || n.kind === 'CStyleCastExpr') &&
    n.inner?.length
  ) {
    n = n.inner[0];
  }
  return n;
}

/** Decodes a C string literal's spelling (`"a\"b"`) as far as update-point labels need. */
function stringLiteralValue(spelling: string): string {
  const body = spelling.replace(/^(u8|u|U|L)?"/, '').replace(/"$/, '');
  return body.replace(
    /\\(["'\\?abfnrtv])/g,
    (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c as 'n'] ?? c,
  );
}

function unitId(path: string): string {
  return 'u' + createHash('sha256').update(path).digest('hex').slice(0, 8);
}

/** Names that can stand before a `(` in a declaration without being the declared function. */
const NOT_A_PROTOTYPE_NAME = new Set([
  '__attribute__',
  '__attribute',
  '__asm__',
  '__asm',
  'asm',
  '__typeof__',
  '__typeof',
  'typeof',
  '__typeof_unqual__',
  'typeof_unqual',
  '_Static_assert',
  'static_assert',
  'sizeof',
  '_Alignof',
  '__alignof__',
  'alignof',
  '_Alignas',
  'alignas',
  '__declspec',
  '_Generic',
  '__extension__',
]);

/**
 * The unit as the JSON AST dump reads it: function prototypes outside the program (system and
 * runtime headers) whose name the unit never uses again are blanked out with spaces, newlines
 * kept, so every byte offset, line and column stays what it was. Nothing can refer to such a
 * declaration (C refers to a function only by its name), and they are a large part of a typical
 * dump (glibc's headers declare hundreds of functions a unit does not call). Only the plain form
 * is blanked: `... name(...) ...;` at file scope, one declarator, no body, initializer, typedef,
 * directive or line marker inside.
 */
export function blankUnusedPrototypes(
  unit: Buffer,
  inProgram: (offset: number) => boolean,
): { text: Buffer; declarations: number } {
  const tokens = scanTokens(unit);
  const uses = new Map<string, number>();
  const count = (id: string) => uses.set(id, (uses.get(id) ?? 0) + 1);
  for (const t of tokens) {
    const c = t.text.charCodeAt(0);
    if (c === 0x23 /* # */) for (const m of t.text.matchAll(/[A-Za-z_$][\w$]*/g)) count(m[0]); // #pragma lines
    else if (/^[A-Za-z_$]/.test(t.text)) count(t.text);
  }
  let text: Buffer | undefined;
  let declarations = 0;
  let depth = 0;
  let start = 0; // first token of the current file-scope declaration
  let name: string | undefined; // token before the first `(` at file scope
  let plain = true;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i].text;
    if (t === '(' || t === '[' || t === '{') {
      if (depth === 0 && t === '(' && name === undefined) name = i > start ? tokens[i - 1].text : '';
      if (depth === 0 && t === '{') plain = false;
      depth++;
      continue;
    }
    if (t === ')' || t === ']' || t === '}') {
      depth--;
      continue;
    }
    if (depth !== 0) continue;
    if (t === '=' || t === ',' || t === 'typedef' || t.startsWith('#')) plain = false;
    if (t !== ';') continue;
    const from = tokens[start].start;
    const to = tokens[i].end;
    if (
      plain &&
      name &&
      /^[A-Za-z_$][\w$]*$/.test(name) &&
      !NOT_A_PROTOTYPE_NAME.has(name) &&
      uses.get(name) === 1 &&
      !inProgram(from) &&
      !inProgram(tokens[i].start) &&
      !unit.subarray(from, to).includes('\n#')
    ) {
      text ??= Buffer.from(unit);
      for (let p = from; p < to; p++) if (text[p] !== 0x0a) text[p] = 0x20;
      declarations++;
    }
    start = i + 1;
    name = undefined;
    plain = true;
  }
  return { text: text ?? unit, declarations };
}

/** Preprocesses, dumps and decodes one translation unit. */
export async function analyzeUnit(opts: AnalyzeOptions): Promise<UnitAnalysis> {
  const clang = opts.clang ?? findClang().path;
  const cwd = resolvePath(opts.cwd);
  const sourceAbs = isAbsolute(opts.source) ? opts.source : resolvePath(cwd, opts.source);
  const unitPath = opts.unitPath ?? (isAbsolute(opts.source) ? relative(cwd, opts.source) : opts.source);
  const split = splitFlags(opts.flags);

  // 1. preprocess with the real flags
  const t0 = Date.now();
  let preprocessed: Buffer;
  try {
    // the source as the real compile names it, so __FILE__ and the line markers match it
    const pp = await run(
      clang,
      [
        '-E',
        ...split.preprocess,
        ...(opts.preprocessFlags ?? []),
        ...QUIET_FLAGS,
        '-x',
        'c',
        opts.source,
        '-o',
        '-',
      ],
      {
        cwd,
        what: `preprocessing ${unitPath}`,
      },
    );
    preprocessed = pp.stdout;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') findClang({ DSU_CLANG: clang });
    throw e;
  }
  const regions = parseLineMarkers(preprocessed);
  const runtimeHeaders = opts.runtimeHeaders ?? ['dsu.h'];
  const isRuntime = (file: string) => runtimeHeaders.some((h) => file === h || file.endsWith(`/${h}`));
  const inProgram = (offset: number | undefined) => {
    if (offset === undefined) return true; // decide after parsing
    const r = regionAt(regions, offset);
    return !!r && !r.system && !isRuntime(r.file);
  };

  const dir = await mkdtemp(join(tmpdir(), 'dsu-cfe-'));
  let cleanupLater = false;
  try {
    const iFile = join(dir, 'unit.i');
    await writeFile(iFile, preprocessed);

    // 2. JSON AST of the .i, keeping only program declarations. clang reads the unit with the
    // prototypes nothing names blanked out (offsets unchanged); should it not accept that text,
    // the unit as it is.
    const t1 = Date.now();
    const unit: UnitModel = { path: unitPath, id: unitId(unitPath), flags: [...opts.flags] };
    const blank =
      opts.keepUnusedPrototypes === true
        ? { text: preprocessed, declarations: 0 }
        : blankUnusedPrototypes(preprocessed, (offset) => inProgram(offset));
    const astFile = blank.declarations > 0 ? join(dir, 'unit-ast.i') : iFile;
    if (astFile !== iFile) await writeFile(astFile, blank.text);
    const dumpAst = (input: string) => {
      const decoder = new UnitDecoder(unit, preprocessed, regions, opts);
      const done = dumpTopLevel({
        clang,
        args: [
          '-Xclang',
          '-ast-dump=json',
          '-fsyntax-only',
          ...split.semantic,
          ...QUIET_FLAGS,
          '-x',
          'cpp-output',
          input,
        ],
        cwd,
        unitPath,
        streamThresholdBytes: opts.streamThresholdBytes,
        forceStreaming: opts.forceStreaming,
        wantOffset: inProgram,
        onDecl: (d) => {
          if (d.loc?.offset !== undefined && inProgram(d.loc.offset)) decoder.add(d);
        },
      });
      return done.then((dump) => ({ dump, a: decoder }));
    };
    const { dump, a } = await dumpAst(astFile).catch((e) => {
      if (astFile === iFile) throw e;
      return dumpAst(iFile);
    });
    const t2 = Date.now();

    a.finish();

    // 3. layouts from the real compiler
    const layoutStart = Date.now();
    const layoutWork =
      !opts.skipLayout && a.types.length > 0
        ? a.probeLayouts({
            clang,
            semantic: split.semantic,
            iFile,
            cwd,
            compiler: opts.layoutCompiler ?? process.env.DSU_LAYOUT_CC ?? 'cc',
            source: sourceAbs,
            preprocessFlags: split.preprocess.filter((f) => !/^-(O|g)/.test(f)),
          })
        : Promise.resolve(undefined);
    const stats: UnitAnalysis['stats'] = {
      preprocessedBytes: preprocessed.length,
      astBytes: dump.astBytes,
      astMode: dump.mode,
      keptDecls: dump.decls,
      preprocessMs: t1 - t0,
      astMs: t2 - t1,
      layoutMs: 0,
    };
    const recordLayout = (layoutCompiler: string | undefined) => {
      stats.layoutMs = Date.now() - layoutStart;
      stats.layoutCompiler = layoutCompiler;
      if (a.layoutMethod) stats.layoutMethod = a.layoutMethod;
      if (a.layoutErrors.length) stats.layoutFallbackReason = a.layoutErrors.join('\n');
    };
    const result: UnitAnalysis = {
      unit,
      preprocessed,
      regions,
      functions: a.functions,
      globals: a.globals,
      types: a.types.map((t) => t.model),
      callSites: a.callSites,
      references: a.references,
      markers: a.markers,
      blockingCalls: a.blockingCalls,
      threadCreates: a.threadCreates,
      statics: a.statics,
      variables: a.variables,
      declarations: a.declarations,
      variableReferences: a.variableReferences,
      records: a.records,
      allocSites: a.allocSites,
      freeRefs: a.freeRefs,
      rawUses: a.rawUses,
      untracked: a.untracked,
      objects: a.objects,
      stats,
    };
    // a method, not data: kept out of equality checks and JSON
    Object.defineProperty(result, 'probeInstrumented', {
      enumerable: false,
      value: async (text: Buffer, at: string, roomy?: ReadonlySet<string>) => {
        const start = Date.now();
        stats.layoutMethod = await a.probeInstrumented(clang, split.semantic, text, at, roomy);
        stats.layoutCompiler = clang;
        stats.layoutMs = Date.now() - start;
      },
    });
    if (opts.deferLayout) {
      cleanupLater = true;
      result.layoutDone = layoutWork
        .then(recordLayout)
        .finally(() => rm(dir, { recursive: true, force: true }));
      return result;
    }
    recordLayout(await layoutWork);
    return result;
  } finally {
    if (!cleanupLater) await rm(dir, { recursive: true, force: true });
  }
}

/** A program type under construction: its model plus what the layout probe needs. */
interface PendingType {
  model: TypeModel;
  /** C spelling of the type for sizeof (`struct S`, or the typedef name). */
  spelling: string;
  /** Fields with their designator path for offsetof (`anon.q`). */
  fields: { model: FieldModel; path: string }[];
  /** Name clang's record-layout dump uses for the record (bit-fields). */
  layoutName?: string;
  complete: boolean;
}

interface FnCtx {
  key: string;
  name: string;
  calls: Set<string>;
  indirect: { pointerType: string; canonicalType?: string }[];
  typesUsed: Set<string>;
  read: Set<string>;
  written: Set<string>;
  updatePoints: string[];
  transactions: string[];
}

class UnitDecoder {
  functions: UnitFunction[] = [];
  globals: GlobalModel[] = [];
  types: PendingType[] = [];
  callSites: CallSite[] = [];
  references: FunctionReference[] = [];
  markers: MarkerCall[] = [];
  blockingCalls: NamedCall[] = [];
  threadCreates: NamedCall[] = [];
  statics: StaticVariable[] = [];
  variables: VariableDeclaration[] = [];
  declarations: FunctionDeclaration[] = [];
  variableReferences: VariableReference[] = [];
  records: RecordInfo[] = [];
  allocSites: AllocSite[] = [];
  freeRefs: UnitAnalysis['freeRefs'] = [];
  rawUses: RawUse[] = [];
  untracked: UnitAnalysis['untracked'] = [];
  objects: ObjectUses = { uses: [], vars: [], creations: [], wholeWrites: [] };
  /** Decl id → index in objects.vars. */
  private ptrVars = new Map<string, number>();
  /** Dereferences already covered by the member access around them. */
  private coveredDerefs = new Set<string>();
  /** CallExpr id of an allocation → the type its result is converted to a pointer of. */
  private allocTarget = new Map<string, string>();

  private staticFns = new Set<string>();
  private staticVars = new Set<string>();
  private globalKeys = new Set<string>();
  /** Why the preferred layout compiler was not used (empty when it was). */
  layoutErrors: string[] = [];
  layoutMethod = '';
  private definedFns = new Set<string>();
  /** VarDecl id → global key (program globals and local statics). */
  private globalIds = new Map<string, string>();
  /** FieldDecl id → owning type key. */
  private fieldOwner = new Map<string, string>();
  /** Type spellings (`struct S`, typedef names) → type key. */
  private typeKeys = new Set<string>();
  private directCallees = new Set<string>();
  private pureWrites = new Set<string>();
  private writes = new Set<string>();
  private readonly up: string[];
  private readonly txnBegin: string[];
  private readonly txnEnd: string[];
  private readonly blocking: Set<string>;
  private readonly internal: string[];

  constructor(
    private readonly unit: UnitModel,
    private readonly buf: Buffer,
    private readonly regions: MarkedRegion[],
    opts: AnalyzeOptions,
  ) {
    this.up = opts.updatePointPrefixes ?? ['dsu__update_point', 'dsu_update_point'];
    this.txnBegin = opts.txnBeginPrefixes ?? ['dsu__txn_begin', 'dsu_txn_begin'];
    this.txnEnd = opts.txnEndPrefixes ?? ['dsu__txn_end', 'dsu_txn_end'];
    this.blocking = new Set(opts.blockingFunctions ?? DEFAULT_BLOCKING_FUNCTIONS);
    this.internal = opts.internalPrefixes ?? ['dsu__'];
  }

  private isInternal(name: string) {
    return this.internal.some((p) => name.startsWith(p));
  }

  private fnKey(name: string) {
    return symbolKey(name, this.unit.path, this.staticFns.has(name));
  }

  /** Unnamed records / enums waiting for the typedef that names them (the next declaration, usually). */
  private pendingAnon = new Map<string, AstNode>();
  /** Ranges of the program's top-level declarations, in source order. */
  private topLevel: ByteRange[] = [];

  /**
   * Decodes one top-level declaration of program code, in source order. C declares before use, so
   * everything a body refers to (static linkage, globals, field owners) is known when it arrives;
   * nothing but the decoded facts is kept.
   */
  add(d: AstNode): void {
    if (d.isImplicit) return;
    if (d.range?.begin.offset !== undefined && d.range.end.offset !== undefined)
      this.topLevel.push({
        start: d.range.begin.offset,
        end: d.range.end.offset + (d.range.end.tokLen ?? 0),
      });
    switch (d.kind) {
      case 'FunctionDecl': {
        if (!d.name) return;
        if (d.storageClass === 'static') this.staticFns.add(d.name);
        const isDefinition = !!d.inner?.some((c) => c.kind === 'CompoundStmt');
        this.declarations.push({
          key: this.fnKey(d.name),
          name: d.name,
          isDefinition,
          range: rangeOf(d),
          nameRange: locRange(d.loc),
        });
        if (isDefinition) {
          this.definedFns.add(d.name);
          this.addFunction(d);
        }
        return;
      }
      case 'VarDecl':
        this.addGlobal(d);
        return;
      case 'RecordDecl':
        if (!d.completeDefinition) return;
        if (d.name) this.addRecord(d, `${d.tagUsed} ${d.name}`, `${d.tagUsed} ${d.name}`);
        else if (d.id) this.pendingAnon.set(d.id, d);
        return;
      case 'EnumDecl':
        if (!d.inner?.length) return;
        if (d.name) this.addEnum(d, `enum ${d.name}`, `enum ${d.name}`);
        else if (d.id) this.pendingAnon.set(d.id, d);
        return;
      case 'TypedefDecl': {
        if (!d.name) return;
        const owned = findOwnedTag(d);
        const anon = owned ? this.pendingAnon.get(owned) : undefined;
        if (anon && owned) {
          this.pendingAnon.delete(owned);
          if (anon.kind === 'EnumDecl') this.addEnum(anon, d.name, d.name, 'typedef');
          else this.addRecord(anon, d.name, d.name, 'typedef');
          return;
        }
        if (this.typeKeys.has(d.name)) return;
        this.typeKeys.add(d.name);
        this.types.push({
          model: this.newType(d.name, 'typedef', {
            target: normalizeType(d.type?.qualType ?? ''),
            updatable: false,
            notUpdatableReason: 'a typedef: its target type decides',
          }),
          spelling: d.name,
          fields: [],
          complete: true,
        });
        return;
      }
    }
  }

  /** Facts that need the whole unit. */
  finish(): void {
    this.pendingAnon.clear();
    for (const r of this.records) {
      const outer = this.topLevel.filter((d) => d.start <= r.open && d.end > r.close);
      r.declStart = Math.min(r.open, ...outer.map((d) => d.start));
      const end = Math.max(r.close + 1, ...outer.map((d) => d.end));
      const semi = this.buf.indexOf(';', end);
      r.declEnd = semi >= 0 && /^\s*$/.test(this.buf.toString('latin1', end, semi)) ? semi + 1 : end;
    }
    // a program that defines its own `read` does not block in libc's
    this.blockingCalls = this.blockingCalls.filter((c) => !this.definedFns.has(c.name));
    this.threadCreates = this.threadCreates.filter((c) => !this.definedFns.has(c.name));
  }

  private addGlobal(d: AstNode) {
    if (!d.name || !d.id) return;
    if (d.storageClass === 'static') this.staticVars.add(d.name);
    const isStatic = this.staticVars.has(d.name);
    const key = symbolKey(d.name, this.unit.path, isStatic);
    this.globalIds.set(d.id, key);
    const isDefinition = d.storageClass !== 'extern' || d.init !== undefined;
    if (!this.isInternal(d.name)) {
      this.variables.push({
        key,
        name: d.name,
        storage: d.storageClass === 'static' ? 'static' : d.storageClass === 'extern' ? 'extern' : 'none',
        isDefinition,
        definition: rangeOf(d),
        nameRange: locRange(d.loc),
      });
    }
    if (isDefinition && !this.isInternal(d.name) && !this.globalKeys.has(key)) {
      this.globalKeys.add(key);
      const type = normalizeType(d.type?.qualType ?? '');
      // the initializer's tokens: a changed one is reported by patches (the running value wins)
      const init = d.init !== undefined ? d.inner?.[d.inner.length - 1] : undefined;
      const initRange = init ? rangeOf(init) : undefined;
      this.globals.push({
        key,
        name: d.name,
        unit: this.unit.path,
        type,
        linkage: isStatic ? 'internal' : 'external',
        ...(initRange && initRange.end > initRange.start
          ? { initHash: hashTokens(tokenize(this.buf, initRange.start, initRange.end), '') }
          : {}),
      });
      if (isStatic) {
        this.statics.push({ key, name: d.name, type, definition: rangeOf(d), nameRange: locRange(d.loc) });
      }
    }
    if (d.inner) for (const c of d.inner) this.visit(c, undefined);
  }

  private newType(key: string, kind: TypeModel['kind'], extra: Partial<TypeModel> = {}): TypeModel {
    return {
      key,
      kind,
      fields: [],
      size: 0,
      align: 0,
      layoutHash: '',
      capacity: 0,
      updatable: true,
      unit: this.unit.path,
      ...extra,
    };
  }

  private addRecord(d: AstNode, key: string, spelling: string, kind?: 'typedef') {
    if (this.typeKeys.has(key)) return;
    this.typeKeys.add(key);
    const packed = !!d.inner?.some((c) => c.kind === 'PackedAttr' || c.kind === 'MaxFieldAlignmentAttr');
    const t: PendingType = {
      model: this.newType(
        key,
        kind ?? (d.tagUsed === 'union' ? 'union' : 'struct'),
        packed ? { packed } : {},
      ),
      spelling,
      fields: [],
      complete: true,
    };
    if (kind === 'typedef') t.model.target = `${d.tagUsed} (unnamed)`;
    t.layoutName = d.name
      ? `${d.tagUsed} ${d.name}`
      : `${d.tagUsed} (unnamed at ${presumedLoc(this.buf, this.regions, d.loc?.offset ?? 0)})`;
    if (packed) {
      t.model.updatable = false;
      t.model.notUpdatableReason = 'packed: its C layout must be kept';
    }
    this.collectFields(d, '', key, t);
    this.types.push(t);
    this.classifyRecord(d, t, key, spelling);
  }

  /** Decides whether dsu-cc gives the struct room for growth (DESIGN.md §4), with the reason if not. */
  private classifyRecord(d: AstNode, t: PendingType, key: string, spelling: string) {
    const open = d.range?.begin.offset !== undefined ? this.buf.indexOf('{', d.range.begin.offset) : -1;
    const close = d.range?.end.offset ?? -1;
    const info: RecordInfo = {
      key,
      updatable: true,
      open,
      close,
      declStart: open,
      declEnd: close + 1,
      spelling,
    };
    const no = (reason: string) => {
      if (!info.updatable) return;
      info.updatable = false;
      info.notUpdatableReason = reason;
    };
    for (const c of d.inner ?? []) {
      if (c.kind !== 'AnnotateAttr' || !c.range) continue;
      const text = this.buf.toString('latin1', c.range.begin.offset, (c.range.end.offset ?? 0) + 1);
      if (/dsu_no_room/.test(text)) no('opted out in the source (DSU_NO_ROOM)');
      const room = /dsu_room=[^0-9]*(\d+)/.exec(text);
      if (room) info.slop = Number(room[1]);
    }
    if (t.model.packed) no('packed: its C layout must be kept');
    if (d.tagUsed === 'union') no('union: only structs get room for growth');
    if (open < 0 || close <= open || this.buf[close] !== 0x7d)
      no('its definition could not be located in the unit');
    const inner = d.inner ?? [];
    if (inner.some((c) => c.kind === 'FieldDecl' && /\[\]$/.test(c.type?.qualType ?? '')))
      no('has a flexible array member');
    if (inner.some((c) => (c.kind === 'RecordDecl' && c.name) || c.kind === 'EnumDecl'))
      no('defines a nested tagged type or enum inside its body');
    if (t.fields.length === 0) no('has no fields');
    if (!info.updatable) {
      t.model.updatable = false;
      t.model.notUpdatableReason = info.notUpdatableReason;
    }
    if (info.slop !== undefined) t.model.slop = info.slop;
    this.records.push(info);
  }

  private collectFields(rec: AstNode, prefix: string, owner: string, t: PendingType) {
    const inner = rec.inner ?? [];
    for (let i = 0; i < inner.length; i++) {
      const f = inner[i];
      if (f.kind !== 'FieldDecl') continue;
      if (f.id) this.fieldOwner.set(f.id, owner);
      const nested =
        i > 0 && inner[i - 1].kind === 'RecordDecl' && !inner[i - 1].name ? inner[i - 1] : undefined;
      const type = normalizeType(f.type?.qualType ?? '');
      const isAnonMember = !f.name || f.isImplicit;
      if (!isAnonMember) {
        const width = f.isBitfield ? Number(findValue(f) ?? 0) : undefined;
        t.fields.push({
          model: {
            name: prefix + f.name,
            type,
            offsetBits: 0,
            sizeBits: width ?? 0,
            ...(f.isBitfield ? { bitfield: true } : {}),
          },
          path: prefix + f.name,
        });
      }
      if (nested && /\((unnamed|anonymous)/.test(f.type?.qualType ?? '')) {
        this.collectFields(nested, isAnonMember ? prefix : `${prefix}${f.name}.`, owner, t);
        if (nested.inner)
          for (const g of nested.inner) if (g.kind === 'FieldDecl' && g.id) this.fieldOwner.set(g.id, owner);
      }
    }
  }

  private addEnum(d: AstNode, key: string, spelling: string, kind?: 'typedef') {
    if (this.typeKeys.has(key)) return;
    this.typeKeys.add(key);
    const t: PendingType = {
      model: this.newType(key, kind ?? 'enum', { updatable: false, notUpdatableReason: 'not a struct' }),
      spelling,
      fields: [],
      complete: true,
    };
    if (kind === 'typedef') t.model.target = 'enum (unnamed)';
    for (const c of d.inner ?? []) {
      if (c.kind === 'EnumConstantDecl' && c.name) {
        t.fields.push({
          model: { name: c.name, type: spelling, offsetBits: 0, sizeBits: 0, value: 0 },
          path: c.name,
        });
      }
    }
    this.types.push(t);
  }

  private addFunction(d: AstNode) {
    const name = d.name as string;
    const key = this.fnKey(name);
    const body = (d.inner ?? []).find((c) => c.kind === 'CompoundStmt') as AstNode;
    const params = (d.inner ?? []).filter((c) => c.kind === 'ParmVarDecl').map((p) => p.name ?? '');
    const ctx: FnCtx = {
      key,
      name,
      calls: new Set(),
      indirect: [],
      typesUsed: new Set(),
      read: new Set(),
      written: new Set(),
      updatePoints: [],
      transactions: [],
    };
    for (const p of d.inner ?? []) if (p.kind === 'ParmVarDecl') this.useType(p.type, ctx);
    for (const p of d.inner ?? []) if (p.kind === 'ParmVarDecl') this.addPtrVar(p, ctx, true);
    this.visit(body, ctx);
    const bodyRange = rangeOf(body);
    const model: FunctionModel = {
      key,
      name,
      unit: this.unit.path,
      isStatic: this.staticFns.has(name),
      signature: normalizeType(d.type?.qualType ?? ''),
      bodyHash: hashTokens(
        tokenize(this.buf, bodyRange.start, bodyRange.end),
        `params:${params.join(',')}\n`,
      ),
      calls: [...ctx.calls].sort(),
      indirectCalls: ctx.indirect,
      addressTaken: false,
      variadic: !!d.variadic,
      params,
      isInline: !!d.inline,
      typesUsed: [...ctx.typesUsed].sort(),
      globalsRead: [...ctx.read].sort(),
      globalsWritten: [...ctx.written].sort(),
      updatePoints: ctx.updatePoints,
      transactions: ctx.transactions,
    };
    this.functions.push({ model, definition: rangeOf(d), body: bodyRange, name: locRange(d.loc) });
  }

  /** Adds the type keys a concrete use of `type` touches (not through pointers). */
  private useType(
    type: { qualType: string; desugaredQualType?: string } | undefined,
    ctx: FnCtx | undefined,
  ) {
    if (!type || !ctx) return;
    for (const q of [type.qualType, type.desugaredQualType]) {
      if (!q) continue;
      const base = q
        .replace(/\b(const|volatile|restrict|__restrict)\b/g, '')
        .replace(/(\s*\[[^\]]*\])+$/, '')
        .replace(/\s+/g, ' ')
        .trim();
      if (this.typeKeys.has(base)) ctx.typesUsed.add(base);
    }
  }

  /** The enclosing `do { static … dsu__site_ …} while (0)` of an expanded DSU_UPDATE_POINT. */
  private siteStmt: ByteRange | undefined;

  private visit(n: AstNode, ctx: FnCtx | undefined): void {
    if (n.kind === 'DoStmt' && isUpdatePointBlock(n)) {
      const outer = this.siteStmt;
      this.siteStmt = rangeOf(n);
      if (n.inner) for (const c of n.inner) this.visit(c, ctx);
      this.siteStmt = outer;
      return;
    }
    switch (n.kind) {
      case 'CallExpr':
        this.onCall(n, ctx);
        break;
      case 'DeclRefExpr':
        this.onRef(n, ctx);
        break;
      case 'MemberExpr': {
        const owner = n.referencedMemberDecl ? this.fieldOwner.get(n.referencedMemberDecl) : undefined;
        if (owner && ctx) ctx.typesUsed.add(owner);
        if (ctx) this.onMember(n, ctx);
        break;
      }
      case 'UnaryExprOrTypeTraitExpr':
        this.useType(n.argType ?? n.inner?.[0]?.type, ctx);
        break;
      case 'ArraySubscriptExpr': {
        // p[i] as a whole object through a pointer (not an array): a use of the element
        const b = n.inner?.[0];
        const t = ctx && n.id && !this.coveredDerefs.has(n.id) && n.type?.qualType ? this.recordKeyOf(n.type.qualType) : undefined;
        if (ctx && t && b && !(b.kind === 'ImplicitCastExpr' && b.castKind === 'ArrayToPointerDecay'))
          this.objects.uses.push({ function: ctx.key, type: t, via: 'dot', base: rangeOf(n), root: 'other' });
        break;
      }
      case 'CompoundLiteralExpr':
        this.useType(n.type, ctx);
        if (ctx) this.onInitList(n.inner?.[0], n.type?.qualType, ctx);
        break;
      case 'ImplicitCastExpr':
      case 'CStyleCastExpr': {
        const call = stripCasts(n.inner?.[0]);
        const callee = call?.kind === 'CallExpr' ? stripCasts(call.inner?.[0]) : undefined;
        const name = callee?.kind === 'DeclRefExpr' ? callee.referencedDecl?.name : undefined;
        const pointee = this.pointee(n.type?.qualType);
        const from = call?.type?.qualType?.replace(/\s+/g, ' ');
        if (call?.id && name && ALLOC.has(name)) {
          if (pointee) this.allocTarget.set(call.id, pointee);
        } else if (pointee && ctx && call?.kind === 'CallExpr' && (from === 'void *' || from === 'char *')) {
          // memory of an updatable type from somewhere dsu does not track (a pool, mmap, ...)
          this.untracked.push({ type: pointee, function: ctx.key, source: name ?? 'an indirect call' });
        }
        break;
      }
      case 'VarDecl':
        if (ctx) this.onLocalVar(n, ctx);
        break;
      case 'BinaryOperator':
        if (n.opcode === '=' && n.inner?.[0]) this.markWrite(n.inner[0], true);
        if (n.opcode === '=' && n.inner?.[1]) {
          const v = this.ptrVarOf(n.inner[0]);
          if (v) v.assigns.push(rangeOf(n.inner[1]));
        }
        break;
      case 'CompoundAssignOperator':
        if (n.inner?.[0]) this.markWrite(n.inner[0], false);
        if (n.inner?.[0]) this.unstable(n.inner[0]);
        break;
      case 'UnaryOperator':
        if ((n.opcode === '++' || n.opcode === '--' || n.opcode === '&') && n.inner?.[0])
          this.markWrite(n.inner[0], false);
        if ((n.opcode === '++' || n.opcode === '--' || n.opcode === '&') && n.inner?.[0]) this.unstable(n.inner[0]);
        if (n.opcode === '*' && ctx && n.id && !this.coveredDerefs.has(n.id) && n.inner?.[0]) {
          const base = n.inner[0];
          const type = this.pointee(base.type?.qualType);
          if (type && this.isRecordKey(type)) {
            const v = this.ptrVarOf(base);
            this.objects.uses.push({ function: ctx.key, type, via: 'deref', base: rangeOf(base), ...(v ? { baseVar: v.id } : {}) });
          }
        }
        break;
    }
    if (n.inner) for (const c of n.inner) this.visit(c, ctx);
  }

  private markWrite(lhs: AstNode, pure: boolean) {
    let n: AstNode | undefined = lhs;
    for (;;) {
      if (!n) return;
      if (n.kind === 'ParenExpr' || (n.kind === 'ImplicitCastExpr' && n.castKind !== 'LValueToRValue'))
        n = n.inner?.[0];
      else if (n.kind === 'MemberExpr' && !n.isArrow) n = n.inner?.[0];
      else if (n.kind === 'ArraySubscriptExpr') {
        const base = n.inner?.[0];
        if (base?.kind === 'ImplicitCastExpr' && base.castKind === 'ArrayToPointerDecay') n = base.inner?.[0];
        else return;
      } else break;
    }
    if (n.kind === 'DeclRefExpr' && n.id) {
      this.writes.add(n.id);
      if (pure) this.pureWrites.add(n.id);
    }
  }

  private onLocalVar(n: AstNode, ctx: FnCtx) {
    if (n.storageClass !== 'static' && n.storageClass !== 'extern') {
      this.addPtrVar(n, ctx, false);
      const t = n.type?.qualType ? this.recordKeyOf(n.type.qualType) : undefined;
      const arr = /^(.*?)\s*\[(\d+)\]$/.exec(n.type?.qualType ?? '');
      const elem = arr ? this.recordKeyOf(arr[1]) : undefined;
      if (elem && arr && n.init === undefined)
        this.objects.creations.push({ function: ctx.key, type: elem, at: rangeOf(n).end, count: Number(arr[2]) });
      if (t) {
        const init = n.init !== undefined ? n.inner?.[n.inner.length - 1] : undefined;
        if (!init) this.objects.creations.push({ function: ctx.key, type: t, at: rangeOf(n).end });
        else this.onInitList(init, n.type?.qualType, ctx);
      }
    }
    if (n.type?.qualType && !/\*/.test(n.type.qualType.replace(/\[[^\]]*\]/g, ''))) this.useType(n.type, ctx);
    if (n.storageClass === 'extern' && n.name && n.id) {
      this.globalIds.set(n.id, symbolKey(n.name, this.unit.path, this.staticVars.has(n.name)));
      return;
    }
    if (n.storageClass !== 'static' || !n.name || !n.id || this.isInternal(n.name)) return;
    const key = `${this.unit.path}::${ctx.name}::${n.name}`;
    this.globalIds.set(n.id, key);
    const type = normalizeType(n.type?.qualType ?? '');
    this.globals.push({
      key,
      name: n.name,
      unit: this.unit.path,
      type,
      linkage: 'function-static',
      function: ctx.key,
    });
    this.statics.push({
      key,
      name: n.name,
      function: ctx.key,
      type,
      definition: rangeOf(n),
      nameRange: locRange(n.loc),
    });
    this.variables.push({
      key,
      name: n.name,
      function: ctx.key,
      storage: 'static',
      isDefinition: true,
      definition: rangeOf(n),
      nameRange: locRange(n.loc),
    });
  }

  /** `struct rec` / typedef name (qualifiers dropped) when it names a program record type. */
  private recordKeyOf(q: string): string | undefined {
    const b = q.replace(/\b(const|volatile|restrict|__restrict)\b/g, '').replace(/\s+/g, ' ').trim();
    return this.typeKeys.has(b) && this.isRecordKey(b) ? b : undefined;
  }

  private isRecordKey(k: string): boolean {
    const t = this.types.find((x) => x.model.key === k);
    if (!t) return false;
    return t.model.kind === 'struct' || (t.model.kind === 'typedef' && t.fields.length > 0) || (t.model.kind === 'typedef' && !!t.model.target && this.isRecordKey(t.model.target));
  }

  private addPtrVar(p: AstNode, ctx: FnCtx, param: boolean) {
    if (!p.id || !p.name) return;
    const type = this.pointee(p.type?.qualType);
    if (!type || !this.isRecordKey(type)) return;
    const init = !param && p.init !== undefined ? p.inner?.[p.inner.length - 1] : undefined;
    this.ptrVars.set(p.id, this.objects.vars.length);
    this.objects.vars.push({ function: ctx.key, id: p.id, name: p.name, type, param, assigns: init ? [rangeOf(init)] : [], unstable: false });
  }

  private ptrVarOf(e: AstNode | undefined): ObjectUses['vars'][number] | undefined {
    let n = e;
    while (n && (n.kind === 'ParenExpr' || (n.kind === 'ImplicitCastExpr' && (n.castKind === 'LValueToRValue' || n.castKind === 'NoOp')))) n = n.inner?.[0];
    if (n?.kind !== 'DeclRefExpr' || !n.referencedDecl?.id) return undefined;
    const i = this.ptrVars.get(n.referencedDecl.id);
    return i === undefined ? undefined : this.objects.vars[i];
  }

  private unstable(e: AstNode) {
    const v = this.ptrVarOf(e);
    if (v) v.unstable = true;
  }

  /** A member access of a record: the object's pointer (->) or the object itself (.). */
  private onMember(n: AstNode, ctx: FnCtx) {
    const base = n.inner?.[0];
    if (!base) return;
    if (n.isArrow) {
      const type = this.pointee(base.type?.qualType);
      if (!type || !this.isRecordKey(type)) return;
      const v = this.ptrVarOf(base);
      this.objects.uses.push({ function: ctx.key, type, via: 'arrow', base: rangeOf(base), ...(v ? { baseVar: v.id } : {}) });
      return;
    }
    const type = base.type?.qualType ? this.recordKeyOf(base.type.qualType) : undefined;
    if (!type) return;
    // what the object path starts from: a global or local object needs no check
    let r: AstNode | undefined = base;
    let root: 'global' | 'local' | 'call' | 'other' = 'other';
    for (let i = 0; r && i < 64; i++) {
      if (r.kind === 'ParenExpr' || (r.kind === 'ImplicitCastExpr' && r.castKind === 'NoOp')) r = r.inner?.[0];
      else if (r.kind === 'MemberExpr' && !r.isArrow) r = r.inner?.[0];
      else if (r.kind === 'ArraySubscriptExpr') {
        const b = r.inner?.[0];
        if (b?.kind === 'ImplicitCastExpr' && b.castKind === 'ArrayToPointerDecay') r = b.inner?.[0];
        else break;
      } else break;
    }
    if (r?.kind === 'DeclRefExpr' && r.referencedDecl?.id) {
      if (this.globalIds.has(r.referencedDecl.id)) root = 'global';
      else if (r.referencedDecl.kind === 'VarDecl' || r.referencedDecl.kind === 'ParmVarDecl') root = 'local';
    } else if (r?.kind === 'CallExpr') root = 'call';
    else if ((r?.kind === 'UnaryOperator' && r.opcode === '*') || r?.kind === 'ArraySubscriptExpr') {
      // (*p).f, p[i].f: the dereference is this access's object
      if (r.id) this.coveredDerefs.add(r.id);
    }
    // an rvalue (a struct returned by value, `c ? a : b`) is a copy the new code made
    if (base.valueCategory !== undefined && base.valueCategory !== 'lvalue') root = 'call';
    this.objects.uses.push({ function: ctx.key, type, via: 'dot', base: rangeOf(base), root });
  }

  /** An initializer list of a record type written by the function (stamped by lazy patches). */
  private onInitList(init: AstNode | undefined, q: string | undefined, ctx: FnCtx) {
    const type = q ? this.recordKeyOf(q) : undefined;
    if (!type || init?.kind !== 'InitListExpr') return;
    const r = rangeOf(init);
    if (r.start < 0 || this.buf[r.start] !== 0x7b || this.buf[r.end - 1] !== 0x7d) return;
    const empty = /^\s*$/.test(this.buf.toString('latin1', r.start + 1, r.end - 1));
    this.objects.creations.push({ function: ctx.key, type, close: r.end - 1, empty });
  }

  private onRef(n: AstNode, ctx: FnCtx | undefined) {
    const ref = n.referencedDecl;
    if (!ref) return;
    if (
      ref.kind === 'FunctionDecl' &&
      (ref.name === 'free' || ref.name === 'realloc') &&
      !this.definedFns.has(ref.name) &&
      !(ref.name === 'realloc' && n.id && this.directCallees.has(n.id))
    ) {
      this.freeRefs.push({ function: ctx?.key, name: ref.name, range: rangeOf(n) });
    }
    if (ref.kind === 'FunctionDecl' && ref.name && !BUILTIN.test(ref.name)) {
      this.references.push({
        function: ctx?.key,
        name: ref.name,
        key: this.fnKey(ref.name),
        range: rangeOf(n),
        use: n.id && this.directCallees.has(n.id) ? 'call' : 'address',
      });
    } else if (ref.kind === 'VarDecl') {
      const key = this.globalIds.get(ref.id);
      if (!key) return;
      this.variableReferences.push({ key, function: ctx?.key, range: rangeOf(n) });
      if (!ctx) return;
      const id = n.id ?? '';
      if (!this.pureWrites.has(id)) ctx.read.add(key);
      if (this.writes.has(id)) ctx.written.add(key);
    }
  }

  /** `struct conn *` → `struct conn` when that is a type of the program (one level of pointer). */
  private pointee(q: string | undefined): string | undefined {
    if (!q) return undefined;
    const m = /^(.*?)\s*\*$/.exec(
      q
        .replace(/\b(const|volatile|restrict|__restrict)\b/g, '')
        .replace(/\s+/g, ' ')
        .trim(),
    );
    if (!m || m[1].includes('*')) return undefined;
    const base = m[1].trim();
    return this.typeKeys.has(base) ? base : undefined;
  }

  /** The program type of an instance pointer argument (`&x`, `p`, through casts), if any. */
  private argType(arg: AstNode | undefined): string | undefined {
    let n = arg;
    while (n && (n.kind === 'ImplicitCastExpr' || n.kind === 'CStyleCastExpr' || n.kind === 'ParenExpr')) {
      const inner: AstNode | undefined = n.inner?.[0];
      if (!inner) break;
      n = inner;
    }
    return this.pointee(n?.type?.qualType);
  }

  private sizeofType(n: AstNode | undefined): string | undefined {
    if (!n) return undefined;
    if (n.kind === 'UnaryExprOrTypeTraitExpr' && n.name === 'sizeof') {
      const q = n.argType?.qualType ?? n.inner?.[0]?.type?.qualType;
      const base = q
        ?.replace(/\b(const|volatile)\b/g, '')
        .replace(/(\s*\[[^\]]*\])+$/, '')
        .replace(/\s+/g, ' ')
        .trim();
      if (base && this.typeKeys.has(base)) return base;
    }
    for (const c of n.inner ?? []) {
      const t = this.sizeofType(c);
      if (t) return t;
    }
    return undefined;
  }

  /** Allocation sites and raw uses of whole instances (DESIGN.md §4, finding live instances). */
  private onDataCall(n: AstNode, name: string, callee: AstNode, ctx: FnCtx) {
    const args = (n.inner ?? []).slice(1);
    if (ALLOC.has(name)) {
      const typeKey =
        (n.id ? this.allocTarget.get(n.id) : undefined) ??
        this.sizeofType({ kind: 'X', inner: args } as AstNode);
      this.allocSites.push({
        function: ctx.key,
        name: name as AllocSite['name'],
        call: rangeOf(n),
        callee: rangeOf(callee),
        ...(typeKey ? { typeKey } : {}),
      });
    }
    const types = args.map((a) => this.argType(a));
    if ((name === 'memset' || name === 'memcpy' || name === 'memmove') && types[0] && this.isRecordKey(types[0])) {
      this.objects.wholeWrites.push({ function: ctx.key, type: types[0], name, call: rangeOf(n), callee: rangeOf(callee) });
    }
    if (RAW_IO_FUNCTIONS.has(name)) {
      const isMem = name === 'memcpy' || name === 'memmove';
      for (const t of types) {
        if (!t) continue;
        // struct-to-struct copies of the same type keep the layout (room included)
        if (isMem && types[0] === types[1]) continue;
        this.rawUses.push({ type: t, callee: name, function: ctx.key, kind: 'io' });
      }
      return;
    }
    if (LAYOUT_NEUTRAL_FUNCTIONS.has(name)) return;
    // A function of this unit (its statics included, even when defined further down) is compiled
    // with the same room; other units' functions are sorted out when the program is linked.
    if (this.staticFns.has(name) || this.definedFns.has(name)) return;
    // the callee's own parameter types name the struct: code outside the program may depend on it
    const fnType = callee.type?.qualType ?? '';
    for (const t of new Set(types)) {
      if (t && fnType.includes(t))
        this.rawUses.push({ type: t, callee: name, function: ctx.key, kind: 'external' });
    }
  }

  private onCall(n: AstNode, ctx: FnCtx | undefined) {
    const calleeExpr = n.inner?.[0];
    if (!calleeExpr || !ctx) return;
    const core = stripCasts(calleeExpr);
    const call = rangeOf(n);
    if (
      core?.kind === 'DeclRefExpr' &&
      core.referencedDecl?.kind === 'FunctionDecl' &&
      core.referencedDecl.name
    ) {
      const name = core.referencedDecl.name;
      if (core.id) this.directCallees.add(core.id);
      if (BUILTIN.test(name)) return;
      if (!this.definedFns.has(name)) this.onDataCall(n, name, core, ctx);
      const calleeKey = this.fnKey(name);
      const callee = rangeOf(core);
      ctx.calls.add(calleeKey);
      this.callSites.push({ function: ctx.key, call, callee, direct: true, calleeName: name, calleeKey });
      const arg = stripCasts(n.inner?.[1]);
      const label =
        arg?.kind === 'StringLiteral' && typeof arg.value === 'string'
          ? stringLiteralValue(arg.value)
          : undefined;
      const kind = this.up.some((p) => name.startsWith(p))
        ? 'update-point'
        : this.txnBegin.some((p) => name.startsWith(p))
          ? 'txn-begin'
          : this.txnEnd.some((p) => name.startsWith(p))
            ? 'txn-end'
            : undefined;
      if (kind && label !== undefined) {
        this.markers.push({
          function: ctx.key,
          kind,
          label,
          calleeName: name,
          call,
          callee,
          ...(kind === 'update-point' && this.siteStmt ? { statement: this.siteStmt } : {}),
        });
        if (kind === 'update-point') ctx.updatePoints.push(label);
        else if (kind === 'txn-begin') ctx.transactions.push(label);
      }
      if (!this.definedFns.has(name)) {
        if (this.blocking.has(name)) this.blockingCalls.push({ function: ctx.key, name, call, callee });
        if (name === 'pthread_create') this.threadCreates.push({ function: ctx.key, name, call, callee });
      }
    } else {
      const pointerType = normalizeType(calleeExpr.type?.qualType ?? '');
      const desugared = calleeExpr.type?.desugaredQualType;
      ctx.indirect.push(
        desugared && normalizeType(desugared) !== pointerType
          ? { pointerType, canonicalType: normalizeType(desugared) }
          : { pointerType },
      );
      this.callSites.push({
        function: ctx.key,
        call,
        callee: rangeOf(calleeExpr),
        direct: false,
        pointerType,
      });
    }
  }

  /** Probe expressions for sizes, alignments, offsets and enumerator values of every type. */
  private layoutQueries(withRoom: boolean | ReadonlySet<string>) {
    const exprs: string[] = [];
    const slots: ((v: number | undefined) => void)[] = [];
    const ask = (e: string, set: (v: number | undefined) => void) => {
      exprs.push(e);
      slots.push(set);
    };
    const roomy: ReadonlySet<string> =
      typeof withRoom === 'boolean'
        ? new Set(this.records.filter((r) => r.updatable).map((r) => r.key))
        : withRoom;
    // Expressions that cannot compile cost a second probe run (the first fails and is retried
    // without them): leave out types this unit only declares, and flexible array members.
    const defined = new Set(
      this.types
        .filter((t) => t.model.kind !== 'typedef' || /\(unnamed\)$/.test(t.model.target ?? ''))
        .map((t) => t.model.key),
    );
    const typedefs = new Map(
      this.types.filter((t) => t.model.kind === 'typedef').map((t) => [t.model.key, t.model.target ?? '']),
    );
    const incomplete = (type: string, depth = 0): boolean => {
      if (/\[\]$/.test(type)) return true;
      if (/^(struct|union) /.test(type)) return !defined.has(type);
      const next = typedefs.get(type);
      return next !== undefined && depth < 16 && !defined.has(type) && incomplete(next, depth + 1);
    };
    for (const t of this.types) {
      const T = t.spelling;
      if (incomplete(t.model.key)) {
        t.complete = false;
        continue;
      }
      ask(`sizeof(${T})`, (v) => {
        if (v === undefined) t.complete = false;
        t.model.size = v ?? 0;
        t.model.capacity = v ?? 0;
      });
      ask(`__alignof__(${T})`, (v) => (t.model.align = v ?? 0));
      if (withRoom !== false && roomy.has(t.model.key)) {
        // after sizeof (answers arrive in order): size = bytes the fields use, capacity = sizeof
        ask(`__builtin_offsetof(${T}, __dsu_room)`, (v) => {
          if (v !== undefined) t.model.size = v;
        });
      }
      for (const f of t.fields) {
        if (f.model.value !== undefined) ask(`(long long)(${f.path})`, (v) => (f.model.value = v ?? 0));
        else if (!f.model.bitfield) {
          ask(`__builtin_offsetof(${T}, ${f.path})`, (v) => (f.model.offsetBits = (v ?? -1) * 8));
          if (!/\[\]$/.test(f.model.type))
            ask(`sizeof(((${T} *)0)->${f.path})`, (v) => (f.model.sizeBits = (v ?? 0) * 8));
        }
      }
    }
    return { exprs, slots };
  }

  /** See `UnitAnalysis.probeInstrumented`; returns how the layouts were learned. */
  async probeInstrumented(
    clang: string,
    semantic: string[],
    text: Buffer,
    cwd: string,
    roomy?: ReadonlySet<string>,
  ): Promise<string> {
    const { exprs, slots } = this.layoutQueries(roomy ?? true);
    const withBits = this.types.filter((t) => t.fields.some((f) => f.model.bitfield));
    // Bit-fields (offsetof cannot measure them) from clang's record layout dump in the same run.
    // Records are found in the dump by name; an unnamed record is named by its presumed location,
    // which the edits and the stripped bodies move: then the plain unit is dumped on its own.
    const sameRun = withBits.every((t) => t.layoutName && !t.layoutName.includes('(unnamed at '));
    const dumpFlags = withBits.length > 0 && sameRun ? ['-Xclang', '-fdump-record-layouts-complete'] : [];
    let method = 'instrumented-stripped';
    // Types only: without the function bodies the probe is a fraction of a compile.
    const probe = await probeConstants(
      clang,
      [...semantic, ...dumpFlags],
      stripFunctionBodies(text),
      exprs,
      cwd,
      'cpp-output',
    ).catch(() => {
      method = 'instrumented';
      return probeConstants(clang, [...semantic, ...dumpFlags], text, exprs, cwd, 'cpp-output');
    });
    probe.values.forEach((v, i) => slots[i](v));
    if (withBits.length > 0) {
      const dumped = dumpFlags.length > 0 && probe.output.includes('*** Dumping AST Record Layout');
      this.applyBitfields(
        withBits,
        dumped ? probe.output : await this.dumpRecordLayouts(clang, semantic, this.buf, cwd),
      );
    }
    this.finishLayouts();
    return method;
  }

  /** clang's record layout dump of a preprocessed unit (its `.i` file, or its text) (stdout and stderr). */
  private async dumpRecordLayouts(
    clang: string,
    semantic: string[],
    unit: string | Buffer,
    cwd: string,
  ): Promise<string> {
    const dump = (file: string) =>
      run(
        clang,
        [
          '-fsyntax-only',
          '-Xclang',
          '-fdump-record-layouts-complete',
          ...semantic,
          ...QUIET_FLAGS,
          '-x',
          'cpp-output',
          file,
        ],
        { cwd, what: `record layouts of ${this.unit.path}` },
      );
    const { stderr, stdout } =
      typeof unit === 'string' ? await dump(unit) : await withTempFile(unit, '.i', dump);
    return stdout.toString('utf8') + stderr;
  }

  /** Bit offsets of bit-fields from a record layout dump (-1 when the dump does not have them). */
  private applyBitfields(withBits: readonly PendingType[], dump: string): void {
    const layouts = parseRecordLayouts(dump);
    for (const t of withBits) {
      const rec = t.layoutName ? layouts.get(t.layoutName) : undefined;
      for (const f of t.fields) {
        if (!f.model.bitfield) continue;
        const l = rec?.get(f.path);
        f.model.offsetBits = l ? l.offsetBits : -1;
      }
    }
  }

  private finishLayouts(): void {
    for (const t of this.types) {
      t.model.fields = t.fields.map((f) => f.model);
      if (!t.complete) t.model.incomplete = true;
      t.model.layoutHash = layoutHash(t.model);
    }
  }

  /**
   * Fills sizes, alignments, offsets and enumerator values; returns the compiler that answered.
   * The real compiler (`cc`) probes the original source with the real preprocessing flags (a
   * clang-preprocessed `.i` is not valid input for gcc: glibc picks compiler-specific branches);
   * clang on the `.i` is the fallback.
   */
  async probeLayouts(p: {
    clang: string;
    semantic: string[];
    iFile: string;
    cwd: string;
    compiler: string;
    source: string;
    preprocessFlags: string[];
  }): Promise<string> {
    const { clang, semantic, iFile, cwd } = p;
    const { exprs, slots } = this.layoutQueries(false);
    // 1. real compiler, its own preprocessing, function bodies stripped (fast: types only)
    // 2. real compiler on the whole source; 3. clang on the .i
    // The same clang as the AST (dsu-cc): its `.i` with the bodies stripped is the prelude, so no
    // second preprocessing run; the whole `.i` is the fallback.
    const sameClang = p.compiler === clang;
    const attempts: [
      string,
      string,
      () => Promise<{ flags: string[]; prelude: Buffer; lang: 'c' | 'cpp-output' }>,
    ][] = sameClang
      ? [
          [
            clang,
            'clang-i-stripped',
            async () => ({ flags: semantic, prelude: stripFunctionBodies(this.buf), lang: 'cpp-output' }),
          ],
          [clang, 'clang-i', async () => ({ flags: semantic, prelude: this.buf, lang: 'cpp-output' })],
        ]
      : [
          [
            p.compiler,
            'stripped-bodies',
            async () => {
              const { stdout } = await run(
                p.compiler,
                ['-E', ...p.preprocessFlags, '-w', '-x', 'c', p.source, '-o', '-'],
                {
                  cwd,
                  what: `preprocessing for the layout probe (${p.compiler})`,
                },
              );
              return { flags: p.semantic, prelude: stripFunctionBodies(stdout), lang: 'cpp-output' };
            },
          ],
          [
            p.compiler,
            'whole-source',
            async () => ({
              flags: p.preprocessFlags,
              prelude: Buffer.from(`#include ${JSON.stringify(p.source)}\n`),
              lang: 'c',
            }),
          ],
          [clang, 'clang-i', async () => ({ flags: semantic, prelude: this.buf, lang: 'cpp-output' })],
        ];
    let used = '';
    let values: (number | undefined)[] = [];
    const errors: string[] = [];
    for (const [cc, method, prepare] of attempts) {
      try {
        const { flags, prelude, lang } = await prepare();
        values = (await probeConstants(cc, flags, prelude, exprs, cwd, lang)).values;
        used = cc;
        this.layoutMethod = method;
        break;
      } catch (e) {
        errors.push((e as Error).message.slice(0, 4000));
      }
    }
    if (!used) throw new Error(`layout probe of ${this.unit.path} failed:\n${errors.join('\n')}`);
    if (used !== p.compiler) this.layoutErrors = errors;
    values.forEach((v, i) => slots[i](v));

    // bit-fields: offsetof cannot measure them; ask clang's record layout dump
    const withBits = this.types.filter((t) => t.fields.some((f) => f.model.bitfield));
    if (withBits.length > 0)
      this.applyBitfields(withBits, await this.dumpRecordLayouts(clang, semantic, iFile, cwd));
    this.finishLayouts();
    return used;
  }
}

/** sha256 over what decides a type's layout: kind, size, alignment, fields (name, type, offset, size). */
export function layoutHash(
  t: Pick<TypeModel, 'kind' | 'size' | 'align' | 'fields'> & { target?: string },
): string {
  const body = JSON.stringify([
    t.kind,
    t.size,
    t.align,
    t.target ?? '',
    t.fields.map((f) => [f.name, f.type, f.offsetBits, f.sizeBits, f.value ?? null]),
  ]);
  return createHash('sha256').update(body).digest('hex');
}

function isUpdatePointBlock(n: AstNode): boolean {
  const body = n.inner?.[0];
  return !!body?.inner?.some(
    (s) =>
      s.kind === 'DeclStmt' && s.inner?.some((v) => v.kind === 'VarDecl' && v.name?.startsWith('dsu__site')),
  );
}

function findOwnedTag(d: AstNode): string | undefined {
  const stack = [...(d.inner ?? [])];
  while (stack.length) {
    const n = stack.pop() as AstNode;
    if (n.ownedTagDecl?.id) return n.ownedTagDecl.id;
    if (n.inner) stack.push(...n.inner);
  }
  return undefined;
}

function findValue(n: AstNode): string | undefined {
  const stack = [...(n.inner ?? [])];
  while (stack.length) {
    const c = stack.shift() as AstNode;
    if (typeof c.value === 'string') return c.value;
    if (c.inner) stack.push(...c.inner);
  }
  return undefined;
}
