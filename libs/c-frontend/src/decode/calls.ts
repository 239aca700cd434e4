import type { AstNode } from '../ast';
import { normalizeType, rangeOf, stringLiteralValue, stripCasts } from '../ast-helpers';
import { BUILTIN, DEFAULT_BLOCKING_FUNCTIONS } from '../known-functions';
import type {
  AnalyzeOptions,
  ByteRange,
  CallSite,
  FunctionReference,
  MarkerCall,
  NamedCall,
  VariableReference,
} from '../unit-analysis';
import { addStep, type DecodeContext, type FnCtx } from './context';
import type { DataUses } from './data-uses';

/**
 * Decodes the calls and references of function bodies (and global initializers) for the call
 * graph, the update and safety analyses and the instrumenter: call sites, references to
 * functions (called or address taken) and to program variables (read, written), marker calls
 * (update points, transactions), blocking calls and thread creations, with the matching calls,
 * globals and flow steps of the function being visited. {@link FunctionBodies} walks the body and
 * hands it the calls, references and writes it meets, in visiting order.
 */
export class CallsAndReferences {
  readonly callSites: CallSite[] = [];
  readonly references: FunctionReference[] = [];
  readonly markers: MarkerCall[] = [];
  blockingCalls: NamedCall[] = [];
  threadCreates: NamedCall[] = [];
  readonly variableReferences: VariableReference[] = [];
  /** DeclRefExpr ids that are the callee of a direct call (the others take the address). */
  private directCallees = new Set<string>();
  /** DeclRefExpr ids only written (`g = …`): not a read. */
  private pureWrites = new Set<string>();
  private writes = new Set<string>();
  private readonly up: string[];
  private readonly txnBegin: string[];
  private readonly txnEnd: string[];
  private readonly blocking: Set<string>;

  constructor(
    private readonly cx: DecodeContext,
    private readonly data: DataUses,
    opts: AnalyzeOptions,
  ) {
    this.up = opts.updatePointPrefixes ?? ['dsu__update_point', 'dsu_update_point'];
    this.txnBegin = opts.txnBeginPrefixes ?? ['dsu__txn_begin', 'dsu_txn_begin'];
    this.txnEnd = opts.txnEndPrefixes ?? ['dsu__txn_end', 'dsu_txn_end'];
    this.blocking = new Set(opts.blockingFunctions ?? DEFAULT_BLOCKING_FUNCTIONS);
  }

  /** Facts that need the whole unit: a program that defines its own `read` does not block in libc's. */
  finish(): void {
    this.blockingCalls = this.blockingCalls.filter((c) => !this.cx.definedFns.has(c.name));
    this.threadCreates = this.threadCreates.filter((c) => !this.cx.definedFns.has(c.name));
  }

  /** Notes the variable an assignment, increment or address-of writes (through `.` and arrays). */
  markWrite(lhs: AstNode, pure: boolean): void {
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

  /** A reference to a function (call or address) or to a program variable (read, written). */
  onRef(n: AstNode, ctx: FnCtx | undefined): void {
    const ref = n.referencedDecl;
    if (!ref) return;
    const direct = !!n.id && this.directCallees.has(n.id);
    this.data.onFunctionRef(n, ctx, direct);
    if (ref.kind === 'FunctionDecl' && ref.name && !BUILTIN.test(ref.name)) {
      this.references.push({
        function: ctx?.key,
        name: ref.name,
        key: this.cx.fnKey(ref.name),
        range: rangeOf(n),
        use: direct ? 'call' : 'address',
      });
    } else if (ref.kind === 'VarDecl') {
      const key = this.cx.globalIds.get(ref.id);
      if (!key) return;
      this.variableReferences.push({ key, function: ctx?.key, range: rangeOf(n) });
      if (!ctx) return;
      const id = n.id ?? '';
      const at = rangeOf(n).start;
      if (!this.pureWrites.has(id)) {
        ctx.read.add(key);
        addStep(ctx, 'read', key, at);
      }
      if (this.writes.has(id)) {
        ctx.written.add(key);
        addStep(ctx, 'write', key, at);
      }
    }
  }

  /** A call in a function: its call site and what the callee makes of it (marker, blocking, thread). */
  onCall(n: AstNode, ctx: FnCtx | undefined, siteStmt: ByteRange | undefined): void {
    const calleeExpr = n.inner?.[0];
    if (!calleeExpr || !ctx) return;
    const core = stripCasts(calleeExpr);
    const call = rangeOf(n);
    const { definedFns } = this.cx;
    if (
      core?.kind === 'DeclRefExpr' &&
      core.referencedDecl?.kind === 'FunctionDecl' &&
      core.referencedDecl.name
    ) {
      const name = core.referencedDecl.name;
      if (core.id) this.directCallees.add(core.id);
      if (BUILTIN.test(name)) return;
      if (!definedFns.has(name)) this.data.onCall(n, name, core, ctx);
      const calleeKey = this.cx.fnKey(name);
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
          ...(kind === 'update-point' && siteStmt ? { statement: siteStmt } : {}),
        });
        if (kind === 'update-point') ctx.updatePoints.push(label);
        else if (kind === 'txn-begin') ctx.transactions.push(label);
        addStep(ctx, kind === 'update-point' ? 'point' : kind, label, call.start);
      } else if (!(this.blocking.has(name) && !definedFns.has(name)) && !this.cx.isInternal(name)) {
        addStep(ctx, 'call', calleeKey, call.end);
      }
      if (!definedFns.has(name)) {
        if (this.blocking.has(name)) {
          this.blockingCalls.push({ function: ctx.key, name, call, callee });
          addStep(ctx, 'block', name, call.end);
        }
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
      addStep(ctx, 'icall', normalizeType(desugared ?? pointerType), call.end);
      this.callSites.push({
        function: ctx.key,
        call,
        callee: rangeOf(calleeExpr),
        direct: false,
        pointerType,
      });
    }
  }
}
