import type { AstNode } from '../ast';
import { normalizeType, rangeOf, stripCasts } from '../ast-helpers';
import { ALLOC, LAYOUT_NEUTRAL_FUNCTIONS, RAW_IO_FUNCTIONS } from '../known-functions';
import type { AllocSite, ObjectUses, RawUse, UnitAnalysis } from '../unit-analysis';
import type { DecodeContext, FnCtx } from './context';
import type { TypeDeclarations } from './type-declarations';

/**
 * Decodes how function bodies use instances of the program's record types, for finding live
 * instances and transforming them lazily (DESIGN.md §4): allocation sites, references to
 * free/realloc, raw uses of whole instances (I/O, calls outside the program), memory dsu does not
 * track, and the object uses, creations, whole writes and pointer variables of `objects`. The body
 * walk ({@link FunctionBodies}) calls one hook per node kind it meets, in visiting order.
 */
export class DataUses {
  readonly allocSites: AllocSite[] = [];
  readonly freeRefs: UnitAnalysis['freeRefs'] = [];
  readonly rawUses: RawUse[] = [];
  readonly untracked: UnitAnalysis['untracked'] = [];
  readonly objects: ObjectUses = { uses: [], vars: [], creations: [], wholeWrites: [] };
  /** Decl id → index in objects.vars. */
  private ptrVars = new Map<string, number>();
  /** Dereferences already covered by the member access around them. */
  private coveredDerefs = new Set<string>();
  /** CallExpr id of an allocation → the type its result is converted to a pointer of. */
  private allocTarget = new Map<string, string>();

  constructor(
    private readonly cx: DecodeContext,
    private readonly types: TypeDeclarations,
  ) {}

  /** A parameter of the function: a pointer to a record is an object variable. */
  onParam(p: AstNode, ctx: FnCtx): void {
    this.addPtrVar(p, ctx, true);
  }

  /** A local (neither static nor extern): pointer variables, and the record instances it creates. */
  onLocalVar(n: AstNode, ctx: FnCtx): void {
    if (n.storageClass === 'static' || n.storageClass === 'extern') return;
    this.addPtrVar(n, ctx, false);
    const t = n.type?.qualType ? this.types.recordKeyOf(n.type.qualType) : undefined;
    const arr = /^(.*?)\s*\[(\d+)\]$/.exec(n.type?.qualType ?? '');
    const elem = arr ? this.types.recordKeyOf(arr[1]) : undefined;
    if (elem && arr && n.init === undefined)
      this.objects.creations.push({
        function: ctx.key,
        type: elem,
        at: rangeOf(n).end,
        count: Number(arr[2]),
      });
    if (t) {
      const init = n.init !== undefined ? n.inner?.[n.inner.length - 1] : undefined;
      if (!init) this.objects.creations.push({ function: ctx.key, type: t, at: rangeOf(n).end });
      else this.onInitList(init, n.type?.qualType, ctx);
    }
  }

  /** A member access of a record: the object's pointer (->) or the object itself (.). */
  onMember(n: AstNode, ctx: FnCtx): void {
    const base = n.inner?.[0];
    if (!base) return;
    if (n.isArrow) {
      const type = this.types.pointee(base.type?.qualType);
      if (!type || !this.types.isRecordKey(type)) return;
      const v = this.ptrVarOf(base);
      this.objects.uses.push({
        function: ctx.key,
        type,
        via: 'arrow',
        base: rangeOf(base),
        ...(v ? { baseVar: v.id } : {}),
      });
      return;
    }
    const type = base.type?.qualType ? this.types.recordKeyOf(base.type.qualType) : undefined;
    if (!type) return;
    // what the object path starts from: a global or local object needs no check
    let r: AstNode | undefined = base;
    let root: 'global' | 'local' | 'call' | 'other' = 'other';
    for (let i = 0; r && i < 64; i++) {
      if (r.kind === 'ParenExpr' || (r.kind === 'ImplicitCastExpr' && r.castKind === 'NoOp'))
        r = r.inner?.[0];
      else if (r.kind === 'MemberExpr' && !r.isArrow) r = r.inner?.[0];
      else if (r.kind === 'ArraySubscriptExpr') {
        const b = r.inner?.[0];
        if (b?.kind === 'ImplicitCastExpr' && b.castKind === 'ArrayToPointerDecay') r = b.inner?.[0];
        else break;
      } else break;
    }
    if (r?.kind === 'DeclRefExpr' && r.referencedDecl?.id) {
      if (this.cx.globalIds.has(r.referencedDecl.id)) root = 'global';
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

  /** `p[i]` as a whole object through a pointer (not an array): a use of the element. */
  onArraySubscript(n: AstNode, ctx: FnCtx): void {
    const b = n.inner?.[0];
    const t =
      n.id && !this.coveredDerefs.has(n.id) && n.type?.qualType
        ? this.types.recordKeyOf(n.type.qualType)
        : undefined;
    if (t && b && !(b.kind === 'ImplicitCastExpr' && b.castKind === 'ArrayToPointerDecay'))
      this.objects.uses.push({ function: ctx.key, type: t, via: 'dot', base: rangeOf(n), root: 'other' });
  }

  /** An initializer list of a record type written by the function (stamped by lazy patches). */
  onInitList(init: AstNode | undefined, q: string | undefined, ctx: FnCtx): void {
    const type = q ? this.types.recordKeyOf(q) : undefined;
    if (!type || init?.kind !== 'InitListExpr') return;
    const r = rangeOf(init);
    const { buf } = this.cx;
    if (r.start < 0 || buf[r.start] !== 0x7b || buf[r.end - 1] !== 0x7d) return;
    const empty = /^\s*$/.test(buf.toString('latin1', r.start + 1, r.end - 1));
    this.objects.creations.push({ function: ctx.key, type, close: r.end - 1, empty });
  }

  /** A cast: the type an allocation is for, or a program type obtained from memory dsu does not track. */
  onCast(n: AstNode, ctx: FnCtx | undefined): void {
    const call = stripCasts(n.inner?.[0]);
    const callee = call?.kind === 'CallExpr' ? stripCasts(call.inner?.[0]) : undefined;
    const name = callee?.kind === 'DeclRefExpr' ? callee.referencedDecl?.name : undefined;
    const pointee = this.types.pointee(n.type?.qualType);
    const from = call?.type?.qualType?.replace(/\s+/g, ' ');
    if (call?.id && name && ALLOC.has(name)) {
      if (pointee) this.allocTarget.set(call.id, pointee);
    } else if (pointee && ctx && call?.kind === 'CallExpr' && (from === 'void *' || from === 'char *')) {
      // memory of an updatable type from somewhere dsu does not track (a pool, mmap, ...)
      this.untracked.push({ type: pointee, function: ctx.key, source: name ?? 'an indirect call' });
    } else if (
      pointee &&
      ctx &&
      call?.kind === 'BinaryOperator' &&
      (call.opcode === '+' || call.opcode === '-')
    ) {
      // an instance carved out of a byte buffer: `(struct conn *)(arena + off)`
      const bytes = normalizeType(call.type?.qualType ?? '');
      if (/^(const )?(unsigned |signed )?char \*$|^(const )?void \*$|^(const )?u?int8_t \*$/.test(bytes))
        this.untracked.push({
          type: pointee,
          function: ctx.key,
          source: `pointer arithmetic on a '${bytes}'`,
        });
    }
  }

  /** `a = b`: what an object pointer variable is assigned. */
  onAssign(n: AstNode): void {
    if (n.opcode === '=' && n.inner?.[1]) {
      const v = this.ptrVarOf(n.inner[0]);
      if (v) v.assigns.push(rangeOf(n.inner[1]));
    }
  }

  /** `p += n`: the pointer no longer points at the object it was assigned. */
  onCompoundAssign(n: AstNode): void {
    if (n.inner?.[0]) this.unstable(n.inner[0]);
  }

  /** `p++`, `&p` (the pointer may move), `*p` (a whole object through a pointer). */
  onUnary(n: AstNode, ctx: FnCtx | undefined): void {
    if ((n.opcode === '++' || n.opcode === '--' || n.opcode === '&') && n.inner?.[0])
      this.unstable(n.inner[0]);
    if (n.opcode === '*' && ctx && n.id && !this.coveredDerefs.has(n.id) && n.inner?.[0]) {
      const base = n.inner[0];
      const type = this.types.pointee(base.type?.qualType);
      if (type && this.types.isRecordKey(type)) {
        const v = this.ptrVarOf(base);
        this.objects.uses.push({
          function: ctx.key,
          type,
          via: 'deref',
          base: rangeOf(base),
          ...(v ? { baseVar: v.id } : {}),
        });
      }
    }
  }

  /** A reference to libc's free/realloc other than a realloc call's own callee. */
  onFunctionRef(n: AstNode, ctx: FnCtx | undefined, directCallee: boolean): void {
    const ref = n.referencedDecl;
    if (
      ref?.kind === 'FunctionDecl' &&
      (ref.name === 'free' || ref.name === 'realloc') &&
      !this.cx.definedFns.has(ref.name) &&
      !(ref.name === 'realloc' && directCallee)
    ) {
      this.freeRefs.push({ function: ctx?.key, name: ref.name, range: rangeOf(n) });
    }
  }

  /** A direct call of a function this unit does not define: allocation sites and raw uses of whole instances. */
  onCall(n: AstNode, name: string, callee: AstNode, ctx: FnCtx): void {
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
    if (
      (name === 'memset' || name === 'memcpy' || name === 'memmove') &&
      types[0] &&
      this.types.isRecordKey(types[0])
    ) {
      this.objects.wholeWrites.push({
        function: ctx.key,
        type: types[0],
        name,
        call: rangeOf(n),
        callee: rangeOf(callee),
      });
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
    if (this.cx.staticFns.has(name) || this.cx.definedFns.has(name)) return;
    // the callee's own parameter types name the struct: code outside the program may depend on it
    const fnType = callee.type?.qualType ?? '';
    for (const t of new Set(types)) {
      if (t && fnType.includes(t))
        this.rawUses.push({ type: t, callee: name, function: ctx.key, kind: 'external' });
    }
  }

  /** A pointer to a record (parameter or local): its uses can name the variable. */
  private addPtrVar(p: AstNode, ctx: FnCtx, param: boolean) {
    if (!p.id || !p.name) return;
    const type = this.types.pointee(p.type?.qualType);
    if (!type || !this.types.isRecordKey(type)) return;
    const init = !param && p.init !== undefined ? p.inner?.[p.inner.length - 1] : undefined;
    this.ptrVars.set(p.id, this.objects.vars.length);
    this.objects.vars.push({
      function: ctx.key,
      id: p.id,
      name: p.name,
      type,
      param,
      assigns: init ? [rangeOf(init)] : [],
      unstable: false,
    });
  }

  private ptrVarOf(e: AstNode | undefined): ObjectUses['vars'][number] | undefined {
    let n = e;
    while (
      n &&
      (n.kind === 'ParenExpr' ||
        (n.kind === 'ImplicitCastExpr' && (n.castKind === 'LValueToRValue' || n.castKind === 'NoOp')))
    )
      n = n.inner?.[0];
    if (n?.kind !== 'DeclRefExpr' || !n.referencedDecl?.id) return undefined;
    const i = this.ptrVars.get(n.referencedDecl.id);
    return i === undefined ? undefined : this.objects.vars[i];
  }

  private unstable(e: AstNode) {
    const v = this.ptrVarOf(e);
    if (v) v.unstable = true;
  }

  /** The program type of an instance pointer argument (`&x`, `p`, through casts), if any. */
  private argType(arg: AstNode | undefined): string | undefined {
    let n = arg;
    while (n && (n.kind === 'ImplicitCastExpr' || n.kind === 'CStyleCastExpr' || n.kind === 'ParenExpr')) {
      const inner: AstNode | undefined = n.inner?.[0];
      if (!inner) break;
      n = inner;
    }
    return this.types.pointee(n?.type?.qualType);
  }

  /** The program type a `sizeof` under the node measures, if any. */
  private sizeofType(n: AstNode | undefined): string | undefined {
    if (!n) return undefined;
    if (n.kind === 'UnaryExprOrTypeTraitExpr' && n.name === 'sizeof') {
      const q = n.argType?.qualType ?? n.inner?.[0]?.type?.qualType;
      const base = q
        ?.replace(/\b(const|volatile)\b/g, '')
        .replace(/(\s*\[[^\]]*\])+$/, '')
        .replace(/\s+/g, ' ')
        .trim();
      if (base && this.types.has(base)) return base;
    }
    for (const c of n.inner ?? []) {
      const t = this.sizeofType(c);
      if (t) return t;
    }
    return undefined;
  }
}
