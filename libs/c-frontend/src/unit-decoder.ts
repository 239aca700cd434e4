import {
  symbolKey,
  type FlowStep,
  type FunctionModel,
  type GlobalModel,
  type TypeModel,
  type UnitModel,
} from './program-model';
import type { AstNode } from './ast';
import {
  findOwnedTag,
  findValue,
  isLoop,
  isUpdatePointBlock,
  locRange,
  normalizeType,
  rangeOf,
  stringLiteralValue,
  stripCasts,
} from './ast-helpers';
import {
  ALLOC,
  BUILTIN,
  DEFAULT_BLOCKING_FUNCTIONS,
  LAYOUT_NEUTRAL_FUNCTIONS,
  RAW_IO_FUNCTIONS,
} from './known-functions';
import type { MarkedRegion } from './line-markers';
import { presumedLoc } from './layout';
import { LineCounter } from './line-counter';
import { hashTokens, tokenize } from './tokenizer';
import { TypeLayouts, type PendingType } from './type-layouts';
import type {
  AllocSite,
  AnalyzeOptions,
  ByteRange,
  CallSite,
  FunctionDeclaration,
  FunctionReference,
  MarkerCall,
  NamedCall,
  ObjectUses,
  RawUse,
  RecordInfo,
  StaticVariable,
  UnitAnalysis,
  UnitFunction,
  VariableDeclaration,
  VariableReference,
} from './unit-analysis';

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
  /** Offset of the body's `{`: flow steps and loops are relative to it. */
  bodyStart: number;
  flow: FlowStep[];
  loops: { start: number; end: number }[];
  /** Loops around the node being visited. */
  loopDepth: number;
}

/**
 * Decodes a unit's top-level program declarations, in source order, into the facts dsu-cc, the
 * program model and the patch generator need (functions, calls, globals, types, records,
 * allocation sites, object uses); {@link TypeLayouts} then fills in the layouts.
 */
export class UnitDecoder {
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
    this.layouts = new TypeLayouts(this.types, this.records, buf, unit);
    this.lines = new LineCounter(buf, regions);
  }

  /** The layout probes of this unit's types. */
  readonly layouts: TypeLayouts;

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
          ? {
              initHash: hashTokens(tokenize(this.buf, initRange.start, initRange.end), ''),
              init: this.buf.toString(
                'utf8',
                initRange.start,
                Math.min(initRange.end, initRange.start + 200),
              ),
            }
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
      loopDepth: 0,
    };
    this.at = bodyStart;
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
      flow: this.finishFlow(ctx),
      loops: ctx.loops,
    };
    this.functions.push({ model, definition: rangeOf(d), body: bodyRange, name: locRange(d.loc) });
  }

  /** Records a flow step of the function being decoded, at an absolute offset of the unit. */
  private step(ctx: FnCtx, kind: FlowStep['kind'], name: string, offset: number) {
    ctx.flow.push({ kind, name, at: offset - ctx.bodyStart, line: 0 });
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
      if (this.typeKeys.has(base)) {
        ctx.typesUsed.add(base);
        this.step(ctx, 'type', base, this.at);
      }
    }
  }

  /** The enclosing `do { static … dsu__site_ …} while (0)` of an expanded DSU_UPDATE_POINT. */
  private siteStmt: ByteRange | undefined;

  /** Start offset of the node being visited (where a concrete type use happens). */
  private at = 0;
  private readonly lines: LineCounter;

  private visit(n: AstNode, ctx: FnCtx | undefined): void {
    if (n.range?.begin.offset !== undefined) this.at = n.range.begin.offset;
    if (ctx && isLoop(n)) {
      if (ctx.loopDepth++ === 0) {
        const r = rangeOf(n);
        ctx.loops.push({ start: r.start - ctx.bodyStart, end: r.end - ctx.bodyStart });
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
        this.onCall(n, ctx);
        break;
      case 'DeclRefExpr':
        this.onRef(n, ctx);
        break;
      case 'MemberExpr': {
        const owner = n.referencedMemberDecl ? this.fieldOwner.get(n.referencedMemberDecl) : undefined;
        if (owner && ctx) {
          ctx.typesUsed.add(owner);
          this.step(ctx, 'type', owner, this.at);
        }
        if (ctx) this.onMember(n, ctx);
        break;
      }
      case 'UnaryExprOrTypeTraitExpr':
        this.useType(n.argType ?? n.inner?.[0]?.type, ctx);
        break;
      case 'ArraySubscriptExpr': {
        // p[i] as a whole object through a pointer (not an array): a use of the element
        const b = n.inner?.[0];
        const t =
          ctx && n.id && !this.coveredDerefs.has(n.id) && n.type?.qualType
            ? this.recordKeyOf(n.type.qualType)
            : undefined;
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
        } else if (pointee && ctx && call?.kind === 'BinaryOperator' && (call.opcode === '+' || call.opcode === '-')) {
          // an instance carved out of a byte buffer: `(struct conn *)(arena + off)`
          const bytes = normalizeType(call.type?.qualType ?? '');
          if (/^(const )?(unsigned |signed )?char \*$|^(const )?void \*$|^(const )?u?int8_t \*$/.test(bytes))
            this.untracked.push({ type: pointee, function: ctx.key, source: `pointer arithmetic on a '${bytes}'` });
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
        if ((n.opcode === '++' || n.opcode === '--' || n.opcode === '&') && n.inner?.[0])
          this.unstable(n.inner[0]);
        if (n.opcode === '*' && ctx && n.id && !this.coveredDerefs.has(n.id) && n.inner?.[0]) {
          const base = n.inner[0];
          const type = this.pointee(base.type?.qualType);
          if (type && this.isRecordKey(type)) {
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
    const b = q
      .replace(/\b(const|volatile|restrict|__restrict)\b/g, '')
      .replace(/\s+/g, ' ')
      .trim();
    return this.typeKeys.has(b) && this.isRecordKey(b) ? b : undefined;
  }

  private isRecordKey(k: string): boolean {
    const t = this.types.find((x) => x.model.key === k);
    if (!t) return false;
    return (
      t.model.kind === 'struct' ||
      (t.model.kind === 'typedef' && t.fields.length > 0) ||
      (t.model.kind === 'typedef' && !!t.model.target && this.isRecordKey(t.model.target))
    );
  }

  private addPtrVar(p: AstNode, ctx: FnCtx, param: boolean) {
    if (!p.id || !p.name) return;
    const type = this.pointee(p.type?.qualType);
    if (!type || !this.isRecordKey(type)) return;
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

  /** A member access of a record: the object's pointer (->) or the object itself (.). */
  private onMember(n: AstNode, ctx: FnCtx) {
    const base = n.inner?.[0];
    if (!base) return;
    if (n.isArrow) {
      const type = this.pointee(base.type?.qualType);
      if (!type || !this.isRecordKey(type)) return;
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
    const type = base.type?.qualType ? this.recordKeyOf(base.type.qualType) : undefined;
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
      const at = rangeOf(n).start;
      if (!this.pureWrites.has(id)) {
        ctx.read.add(key);
        this.step(ctx, 'read', key, at);
      }
      if (this.writes.has(id)) {
        ctx.written.add(key);
        this.step(ctx, 'write', key, at);
      }
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
    if (
      (name === 'memset' || name === 'memcpy' || name === 'memmove') &&
      types[0] &&
      this.isRecordKey(types[0])
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
        this.step(ctx, kind === 'update-point' ? 'point' : kind, label, call.start);
      } else if (!(this.blocking.has(name) && !this.definedFns.has(name)) && !this.isInternal(name)) {
        this.step(ctx, 'call', calleeKey, call.end);
      }
      if (!this.definedFns.has(name)) {
        if (this.blocking.has(name)) {
          this.blockingCalls.push({ function: ctx.key, name, call, callee });
          this.step(ctx, 'block', name, call.end);
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
      this.step(ctx, 'icall', normalizeType(desugared ?? pointerType), call.end);
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
