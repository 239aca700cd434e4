import type { AstNode } from '../ast';
import { isLoop, isUpdatePointBlock, locRange, normalizeType, rangeOf, stmtEnd } from '../ast-helpers';
import { LineCounter } from '../line-counter';
import type { MarkedRegion } from '../line-markers';
import type { FlowStep, FunctionModel } from '../program-model';
import { hashTokens, tokenize } from '../tokenizer';
import type { ByteRange, UnitFunction } from '../unit-analysis';
import type { CallsAndReferences } from './calls';
import { addStep, type DecodeContext, type FnCtx } from './context';
import type { DataUses } from './data-uses';
import type { Declarations } from './declarations';
import type { TypeDeclarations } from './type-declarations';

/**
 * Walks function bodies (and global initializers) and builds each function's model (calls,
 * types used, globals read and written, update points, transactions, flow steps in order with
 * their lines, loops), for the call graph and the update and safety analyses. It owns the walk
 * and hands each node, in visiting order, to the visitor of its concern: calls, references and
 * writes to {@link CallsAndReferences}, instances of record types to {@link DataUses}, local
 * statics and externs to {@link Declarations}.
 */
export class FunctionBodies {
  readonly functions: UnitFunction[] = [];
  /** The enclosing `do { static … dsu__site_ …} while (0)` of an expanded DSU_UPDATE_POINT. */
  private siteStmt: ByteRange | undefined;
  /** Start offset of the node being visited (where a concrete type use happens). */
  private at = 0;
  private readonly lines: LineCounter;

  constructor(
    private readonly cx: DecodeContext,
    private readonly types: TypeDeclarations,
    private readonly declarations: Declarations,
    private readonly calls: CallsAndReferences,
    private readonly data: DataUses,
    regions: MarkedRegion[],
  ) {
    this.lines = new LineCounter(cx.buf, regions);
  }

  /** A function definition: its model, from a walk of its body. */
  addFunction(d: AstNode): void {
    const name = d.name as string;
    const key = this.cx.fnKey(name);
    const body = (d.inner ?? []).find((c) => c.kind === 'CompoundStmt') as AstNode;
    const params = (d.inner ?? []).filter((c) => c.kind === 'ParmVarDecl').map((p) => p.name ?? '');
    const bodyStart = body.range?.begin.offset ?? 0;
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
      bodyStart,
      flow: [],
      loops: [],
      loopBodies: [],
      loopDepth: 0,
    };
    this.at = bodyStart;
    for (const p of d.inner ?? []) if (p.kind === 'ParmVarDecl') this.useType(p.type, ctx);
    for (const p of d.inner ?? []) if (p.kind === 'ParmVarDecl') this.data.onParam(p, ctx);
    this.visit(body, ctx);
    const bodyRange = rangeOf(body);
    const model: FunctionModel = {
      key,
      name,
      unit: this.cx.unit.path,
      isStatic: this.cx.staticFns.has(name),
      signature: normalizeType(d.type?.qualType ?? ''),
      bodyHash: hashTokens(
        tokenize(this.cx.buf, bodyRange.start, bodyRange.end),
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
      flow: this.finishFlow(ctx),
      loops: ctx.loops,
    };
    this.functions.push({
      model,
      definition: rangeOf(d),
      body: bodyRange,
      name: locRange(d.loc),
      loopBodies: ctx.loopBodies,
    });
  }

  /** A global's initializer: references to functions and variables outside any function. */
  addInitializer(d: AstNode): void {
    if (d.inner) for (const c of d.inner) this.visit(c, undefined);
  }

  /**
   * The function's steps in order, with their lines; a step repeating the one before it (same
   * kind and name, nothing in between, inside the same outermost loop or outside all) is dropped:
   * it adds nothing to any effect.
   */
  private finishFlow(ctx: FnCtx): FlowStep[] {
    const loopOf = (at: number) => ctx.loops.findIndex((l) => at >= l.start && at < l.end);
    const sorted = ctx.flow.sort((a, b) => a.at - b.at);
    const kept: FlowStep[] = [];
    for (const st of sorted) {
      const prev = kept[kept.length - 1];
      if (prev && prev.kind === st.kind && prev.name === st.name && loopOf(prev.at) === loopOf(st.at))
        continue;
      st.line = this.lines.lineAt(ctx.bodyStart + st.at);
      kept.push(st);
    }
    return kept;
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
      if (this.types.has(base)) {
        ctx.typesUsed.add(base);
        addStep(ctx, 'type', base, this.at);
      }
    }
  }

  private visit(n: AstNode, ctx: FnCtx | undefined): void {
    if (n.range?.begin.offset !== undefined) this.at = n.range.begin.offset;
    if (ctx && isLoop(n)) {
      if (ctx.loopDepth++ === 0) {
        const r = rangeOf(n);
        ctx.loops.push({ start: r.start - ctx.bodyStart, end: r.end - ctx.bodyStart });
        const inner = n.inner ?? [];
        const body = n.kind === 'DoStmt' ? inner[0] : inner[inner.length - 1];
        if (body?.kind) {
          const braced = body.kind === 'CompoundStmt';
          const start = rangeOf(body).start;
          ctx.loopBodies.push({ start, end: stmtEnd(body, this.cx.buf), braced, loopSize: r.end - r.start });
        }
      }
      if (n.inner) for (const c of n.inner) this.visit(c, ctx);
      ctx.loopDepth--;
      return;
    }
    if (n.kind === 'DoStmt' && isUpdatePointBlock(n)) {
      const outer = this.siteStmt;
      this.siteStmt = rangeOf(n);
      if (n.inner) for (const c of n.inner) this.visit(c, ctx);
      this.siteStmt = outer;
      return;
    }
    switch (n.kind) {
      case 'CallExpr':
        this.calls.onCall(n, ctx, this.siteStmt);
        break;
      case 'DeclRefExpr':
        this.calls.onRef(n, ctx);
        break;
      case 'MemberExpr': {
        const owner = n.referencedMemberDecl ? this.types.ownerOfField(n.referencedMemberDecl) : undefined;
        if (owner && ctx) {
          ctx.typesUsed.add(owner);
          addStep(ctx, 'type', owner, this.at);
        }
        if (ctx) this.data.onMember(n, ctx);
        break;
      }
      case 'UnaryExprOrTypeTraitExpr':
        this.useType(n.argType ?? n.inner?.[0]?.type, ctx);
        break;
      case 'ArraySubscriptExpr':
        if (ctx) this.data.onArraySubscript(n, ctx);
        break;
      case 'CompoundLiteralExpr':
        this.useType(n.type, ctx);
        if (ctx) this.data.onInitList(n.inner?.[0], n.type?.qualType, ctx);
        break;
      case 'ImplicitCastExpr':
      case 'CStyleCastExpr':
        this.data.onCast(n, ctx);
        break;
      case 'VarDecl':
        if (ctx) {
          this.data.onLocalVar(n, ctx);
          if (n.type?.qualType && !/\*/.test(n.type.qualType.replace(/\[[^\]]*\]/g, '')))
            this.useType(n.type, ctx);
          this.declarations.addLocal(n, ctx);
        }
        break;
      case 'BinaryOperator':
        if (n.opcode === '=' && n.inner?.[0]) this.calls.markWrite(n.inner[0], true);
        this.data.onAssign(n);
        break;
      case 'CompoundAssignOperator':
        if (n.inner?.[0]) this.calls.markWrite(n.inner[0], false);
        this.data.onCompoundAssign(n);
        break;
      case 'UnaryOperator':
        if ((n.opcode === '++' || n.opcode === '--' || n.opcode === '&') && n.inner?.[0])
          this.calls.markWrite(n.inner[0], false);
        this.data.onUnary(n, ctx);
        break;
    }
    if (n.inner) for (const c of n.inner) this.visit(c, ctx);
  }
}
