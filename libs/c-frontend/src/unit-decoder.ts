import type { AstNode } from './ast';
import { normalizeType } from './ast-helpers';
import { CallsAndReferences } from './decode/calls';
import { DataUses } from './decode/data-uses';
import { DecodeContext } from './decode/context';
import { Declarations } from './decode/declarations';
import { FunctionBodies } from './decode/function-bodies';
import { TypeDeclarations } from './decode/type-declarations';
import { frameSites, type FrameSiteOptions } from './frame-sites';
import { DEFAULT_BLOCKING_FUNCTIONS } from './known-functions';
import { LineCounter } from './line-counter';
import type { MarkedRegion } from './line-markers';
import type { UnitModel } from './program-model';
import type { PendingType } from './type-layouts';
import type { AnalyzeOptions, UnitAnalysis } from './unit-analysis';

/** What decoding a unit's AST yields: the unit analysis but for the text, the layouts and the stats. */
export type DecodedUnit = Pick<
  UnitAnalysis,
  | 'functions'
  | 'globals'
  | 'types'
  | 'callSites'
  | 'references'
  | 'markers'
  | 'blockingCalls'
  | 'threadCreates'
  | 'statics'
  | 'variables'
  | 'declarations'
  | 'variableReferences'
  | 'records'
  | 'allocSites'
  | 'freeRefs'
  | 'rawUses'
  | 'untracked'
  | 'objects'
>;

/**
 * Decodes a unit's top-level program declarations, in source order, into the facts dsu-cc, the
 * program model and the patch generator need, by routing each declaration to one visitor per
 * concern: {@link TypeDeclarations} (records, enums, typedefs; the layout probe of
 * layout-probe.ts fills in their layouts later), {@link Declarations} (functions and variables
 * declared), {@link FunctionBodies} (function models: the walk of each body, flow, loops),
 * {@link CallsAndReferences} (call sites, references, markers, blocking calls) and
 * {@link DataUses} (instances of record types). What several of them need is in one
 * {@link DecodeContext}.
 */
export class UnitDecoder {
  private readonly typeDecls: TypeDeclarations;
  private readonly decls: Declarations;
  private readonly data: DataUses;
  private readonly unitPath: string;
  private readonly calls: CallsAndReferences;
  private readonly bodies: FunctionBodies;
  /** Set when the stack-frame facts of each definition are wanted (AnalyzeOptions.frames). */
  private readonly frameOpts: FrameSiteOptions | undefined;
  /** Lines for frame sites (its own counter: functions come in ascending order). */
  private readonly frameLines: LineCounter;

  constructor(
    unit: UnitModel,
    private readonly buf: Buffer,
    regions: MarkedRegion[],
    opts: AnalyzeOptions,
  ) {
    this.unitPath = unit.path;
    const cx = new DecodeContext(unit, buf, opts.internalPrefixes ?? ['dsu__']);
    this.frameLines = new LineCounter(buf, regions);
    this.typeDecls = new TypeDeclarations(unit, buf, regions);
    this.decls = new Declarations(cx);
    this.data = new DataUses(cx, this.typeDecls);
    this.calls = new CallsAndReferences(cx, this.data, opts);
    this.bodies = new FunctionBodies(cx, this.typeDecls, this.decls, this.calls, this.data, regions);
    if (opts.frames) {
      const blocking = new Set(opts.blockingFunctions ?? DEFAULT_BLOCKING_FUNCTIONS);
      this.frameOpts = {
        // A function the unit defines itself never blocks in libc; C declares before use, so
        // the program's declarations seen so far cover every callee of the body.
        isProgramFunction: (name) => cx.programFns.has(name),
        blocking: { has: (name) => blocking.has(name) && !cx.definedFns.has(name) },
        pointFunctions: new Set(opts.updatePointPrefixes ?? ['dsu__update_point', 'dsu_update_point']),
      };
    }
  }

  /** The unit's types with what the layout probe needs, layouts still to be filled in. */
  get pendingTypes(): PendingType[] {
    return this.typeDecls.types;
  }

  /**
   * Decodes one top-level declaration of program code, in source order. C declares before use, so
   * everything a body refers to (static linkage, globals, field owners) is known when it arrives;
   * nothing but the decoded facts is kept.
   */
  add(d: AstNode): void {
    if (d.isImplicit) return;
    this.typeDecls.add(d);
    switch (d.kind) {
      case 'FunctionDecl':
        // in a body too: xxhash's XXH_STATIC_ASSERT is `do { static_assert(...); } while (0)`
        for (const a of findStaticAsserts(d)) this.addStaticAssert(a);
        if (this.decls.addFunction(d)) {
          this.bodies.addFunction(d);
          if (this.frameOpts) {
            const f = this.bodies.functions[this.bodies.functions.length - 1];
            f.frame = frameSites(d, this.buf, { ...this.frameOpts, lineAt: (o) => this.frameLines.lineAt(o) });
          }
        }
        return;
      case 'VarDecl':
        if (this.decls.addGlobal(d)) this.bodies.addInitializer(d);
        return;
      case 'StaticAssertDecl':
        this.addStaticAssert(d);
        return;
    }
  }

  /**
   * `_Static_assert(sizeof(XXH32_canonical_t) == sizeof(XXH32_hash_t), ...)` (lighttpd's xxhash):
   * the program checks the type's size, so room would fail the build. The type keeps its C layout
   * here, and program-wide through a raw use (the link step recompiles units that gave it room).
   */
  private addStaticAssert(d: AstNode): void {
    const sized = new Set<string>();
    const walk = (n: AstNode) => {
      if (n.kind === 'UnaryExprOrTypeTraitExpr' && n.argType?.qualType) sized.add(normalizeType(n.argType.desugaredQualType ?? n.argType.qualType));
      else if (n.kind === 'UnaryExprOrTypeTraitExpr' && n.inner?.[0]?.type?.qualType) sized.add(normalizeType(n.inner[0].type.qualType));
      for (const c of n.inner ?? []) if (c) walk(c);
    };
    walk(d);
    for (const t of sized) {
      for (const key of [t, this.typeDecls.typedefTarget(t)]) {
        if (!key || !this.typeDecls.keepLayout(key, 'its size is checked by a static assertion (_Static_assert) of the program')) continue;
        this.data.rawUses.push({ type: key, callee: '_Static_assert', function: `file scope of ${this.unitPath}`, kind: 'io' });
      }
    }
  }

  /** Facts that need the whole unit; returns everything decoded. */
  finish(): DecodedUnit {
    this.typeDecls.finish();
    this.calls.finish();
    const { bodies, calls, decls, data } = this;
    return {
      functions: bodies.functions,
      globals: decls.globals,
      types: this.typeDecls.types.map((t) => t.model),
      callSites: calls.callSites,
      references: calls.references,
      markers: calls.markers,
      blockingCalls: calls.blockingCalls,
      threadCreates: calls.threadCreates,
      statics: decls.statics,
      variables: decls.variables,
      declarations: decls.declarations,
      variableReferences: calls.variableReferences,
      records: this.typeDecls.records,
      allocSites: data.allocSites,
      freeRefs: data.freeRefs,
      rawUses: data.rawUses,
      untracked: data.untracked,
      objects: data.objects,
    };
  }
}

/** The `_Static_assert` declarations inside a function's body. */
function findStaticAsserts(n: AstNode, out: AstNode[] = []): AstNode[] {
  for (const c of n.inner ?? []) {
    if (!c) continue;
    if (c.kind === 'StaticAssertDecl') out.push(c);
    else findStaticAsserts(c, out);
  }
  return out;
}
