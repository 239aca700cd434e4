import type { AstNode } from './ast';
import {
  isSpace,
  isUpdatePointBlock,
  NESTING,
  normalizeType,
  rangeOf,
  stmtEnd,
  stringLiteralValue,
  stripCasts,
} from './ast-helpers';
import { LineCounter } from './line-counter';
import { parseLineMarkers, type MarkedRegion } from './line-markers';

/** A byte range `[start, end)` in the preprocessed unit text. */
export interface FrameRange {
  start: number;
  end: number;
}

/** One local of a function (parameters included), as stack-frame capture and resume code sees it. */
export interface FrameLocal {
  /** As in the source. */
  name: string;
  /** clang's qualType text. */
  type: string;
  /** How the runtime saves it: integer (signed/unsigned, enums, char, _Bool), pointer, bytes (anything else). */
  kind: 'int' | 'uint' | 'ptr' | 'bytes';
  param: boolean;
  /** The whole declaration statement through its `;` (parameters: the ParmVarDecl). */
  decl: FrameRange;
  /** Where the name is visible: from the end of its declarator to the end of its enclosing block (parameters: the body). */
  scope: FrameRange;
  /** simple: a scalar whose initializer has no call, assignment, ++/-- or comma (may be re-evaluated). */
  initializer?: FrameRange & { simple: boolean };
  /** `&x` (also of a member or element of x), or an array local decaying to a pointer that is kept (not merely indexed or dereferenced). */
  addressTaken: boolean;
  /** Each place the address is taken, with what is done with it. */
  addressUses: { line: number; use: 'call-arg' | 'local-pointer' | 'escapes' }[];
  /** Variably modified type: cannot be saved. */
  vla: boolean;
  /** static/extern: not part of the frame. */
  static: boolean;
}

export type FrameSiteKind = 'point' | 'call' | 'wait';

/** A place a frame can be stopped at (captured after it) and resumed at. */
export interface FrameSite {
  kind: FrameSiteKind;
  /** The callee's name; for a call through a pointer, the pointer expression's text; for a point, its name. */
  callee: string;
  /** The k-th site with the same kind and callee in the function, in source order, from 0. */
  ordinal: number;
  /** `call:<callee>#<k>`, `wait:<callee>#<k>` or `point:<name>` (dsu.h, "Stack-frame mapping"). */
  id: string;
  line: number;
  /** The whole statement holding the call, through its `;` (a DSU_UPDATE_POINT: the expanded do-while). */
  statement: FrameRange;
  /** The call expression itself. */
  call: FrameRange;
  /** The call's value is `void` (it cannot be wrapped in an expression that yields it). */
  returnsVoid: boolean;
  form: 'expr' | 'assign' | 'decl' | 'return' | 'nested';
  /** The statement is the direct body of if/else/while/for/do without braces. */
  inBracelessBody: boolean;
  /** Non-static locals (parameters included) in scope at the statement, in declaration order; 'decl': with the one declared. */
  locals: string[];
  resumable: boolean;
  /** Why it is not resumable, naming the line. */
  reason?: string;
}

export interface FunctionFrameInfo {
  locals: FrameLocal[];
  sites: FrameSite[];
}

export interface FrameSiteOptions {
  /** Functions defined by the program: their calls are 'call' sites (checked before `blocking`). */
  isProgramFunction: (name: string) => boolean;
  /** Blocking library functions wrapped by dsu-cc: their calls are 'wait' sites. */
  blocking: { has(name: string): boolean };
  /** Update point functions (`dsu__update_point`): their calls are 'point' sites named by their first string literal. */
  pointFunctions: ReadonlySet<string>;
  /** The source line of a byte offset; default: from the unit's line markers (one pass over the text per call). */
  lineAt?: (offset: number) => number;
}

interface StmtCtx {
  node: AstNode;
  range: FrameRange;
  braceless: boolean;
}

interface LocalInfo extends FrameLocal {
  id: string;
}

interface RawSite {
  kind: FrameSiteKind;
  callee: string;
  call: AstNode;
  stmt: StmtCtx;
  form: FrameSite['form'];
  /** The local a 'decl' statement declares. */
  declared?: string;
  line: number;
  /** Why it is not resumable, before the scope is known. */
  reason?: string;
}

/**
 * The stack-frame facts of one C function definition: its locals (parameters first, then in
 * declaration order) and the sites a frame can be captured and resumed at, in source order.
 * `fn` is a clang JSON `FunctionDecl` with a body; `text` is the preprocessed unit its byte
 * offsets point into. Sites: calls of `pointFunctions` ('point'), of program functions or through
 * a function pointer ('call'), of `blocking` functions ('wait'); other library calls are not
 * sites, nor is anything inside an expanded DSU_UPDATE_POINT but its point call. Pure.
 */
export function frameSites(fn: AstNode, text: Buffer, opts: FrameSiteOptions): FunctionFrameInfo {
  const body = fn.inner?.filter((c) => c.kind === 'CompoundStmt').pop();
  if (fn.kind !== 'FunctionDecl' || !body) throw new Error(`frameSites: ${fn.name ?? fn.kind} has no body`);
  const walker = new FrameWalker(text, opts, opts.lineAt ?? defaultLineAt(text));
  walker.addParams(fn, rangeOf(body));
  walker.visitBlock(body);
  return walker.finish();
}

/** Lines from the unit's line markers, or counted from 1 in a text without markers. */
function defaultLineAt(text: Buffer): (offset: number) => number {
  const marked = parseLineMarkers(text);
  const regions: MarkedRegion[] = marked.length
    ? marked
    : [{ start: 0, end: text.length, file: '', line: 1, system: false }];
  const counter = new LineCounter(text, regions);
  return (offset) => counter.lineAt(offset);
}

const LOOP_WORD: Record<string, string> = {
  IfStmt: 'the condition of an if statement',
  WhileStmt: 'the condition of a while loop',
  DoStmt: 'the condition of a do-while loop',
  ForStmt: 'the header of a for loop',
  SwitchStmt: 'the controlling expression of a switch',
};

/** One pass over a body: locals, address uses and raw sites; scopes are resolved in {@link finish}. */
class FrameWalker {
  private readonly locals: LocalInfo[] = [];
  private readonly byId = new Map<string, LocalInfo>();
  private readonly sites: RawSite[] = [];
  private readonly path: AstNode[] = [];
  /** Ends of the enclosing blocks (compound statements and for statements). */
  private readonly scopeEnds: number[] = [];
  /** The statement of the expanded DSU_UPDATE_POINT being walked. */
  private pointStmt: StmtCtx | undefined;
  private inSizeof = 0;

  constructor(
    private readonly text: Buffer,
    private readonly opts: FrameSiteOptions,
    private readonly lineAt: (offset: number) => number,
  ) {}

  addParams(fn: AstNode, body: FrameRange): void {
    for (const p of fn.inner ?? []) {
      if (p.kind !== 'ParmVarDecl' || !p.name) continue;
      this.addLocal(p, { param: true, decl: rangeOf(p), scope: body });
    }
  }

  /** A compound statement: each child is a statement of its own. */
  visitBlock(block: AstNode): void {
    this.path.push(block);
    this.scopeEnds.push(rangeOf(block).end);
    for (const c of block.inner ?? []) this.visitStmt(c, false);
    this.scopeEnds.pop();
    this.path.pop();
  }

  /** A statement in a block or the body of a control statement. */
  private visitStmt(n: AstNode, braceless: boolean): void {
    if (n.kind === 'CompoundStmt') return this.visitBlock(n);
    if (!n.kind) return;
    const ctx: StmtCtx = {
      node: n,
      range: { start: rangeOf(n).start, end: stmtEnd(n, this.text) },
      braceless,
    };
    this.visit(n, ctx);
  }

  private visit(n: AstNode, stmt: StmtCtx): void {
    if (!n.kind) return;
    if (n.kind === 'DoStmt' && isUpdatePointBlock(n) && !this.pointStmt) {
      this.pointStmt = stmt;
      this.visitChildren(n, stmt);
      this.pointStmt = undefined;
      return;
    }
    switch (n.kind) {
      case 'CallExpr':
        this.onCall(n, stmt);
        break;
      case 'VarDecl':
        if (!this.pointStmt) this.onVarDecl(n, stmt);
        break;
      case 'UnaryOperator':
        if (n.opcode === '&' && !this.inSizeof) this.onAddress(n, n.inner?.[0]);
        break;
      case 'ImplicitCastExpr':
        if (n.castKind === 'ArrayToPointerDecay' && !this.inSizeof && !this.transientDecay()) {
          this.onAddress(n, n.inner?.[0]);
        }
        break;
    }
    if (n.kind === 'UnaryExprOrTypeTraitExpr') this.inSizeof++;
    // A local of a GNU statement expression (`({ const struct in6_addr *__a = ...; ... })` from
    // libc's macros) is in scope only inside it, never at a later statement.
    const scoped = n.kind === 'ForStmt' || n.kind === 'StmtExpr';
    if (n.kind === 'ForStmt') this.scopeEnds.push(stmt.node === n ? stmt.range.end : stmtEnd(n, this.text));
    if (n.kind === 'StmtExpr') this.scopeEnds.push(rangeOf(n).end);
    this.visitChildren(n, stmt);
    if (scoped) this.scopeEnds.pop();
    if (n.kind === 'UnaryExprOrTypeTraitExpr') this.inSizeof--;
  }

  /** Children; the bodies of control statements are statements of their own. */
  private visitChildren(n: AstNode, stmt: StmtCtx): void {
    const inner = n.inner ?? [];
    const bodies = new Set<AstNode>();
    if (n.kind === 'IfStmt') inner.slice(1).forEach((c) => bodies.add(c));
    else if (n.kind === 'DoStmt') bodies.add(inner[0]);
    else if (NESTING.has(n.kind)) bodies.add(inner[inner.length - 1]);
    this.path.push(n);
    for (const c of inner) {
      if (!c) continue;
      if (bodies.has(c)) {
        const braceless = n.kind !== 'CaseStmt' && n.kind !== 'DefaultStmt' && n.kind !== 'LabelStmt';
        this.visitStmt(c, braceless);
      } else this.visit(c, stmt);
    }
    this.path.pop();
  }

  private addLocal(
    d: AstNode,
    where: { param: boolean; decl: FrameRange; scope: FrameRange; initializer?: FrameLocal['initializer'] },
  ): LocalInfo {
    const type = d.type?.qualType ?? '';
    const canonical = d.type?.desugaredQualType ?? type;
    const local: LocalInfo = {
      id: d.id ?? '',
      name: d.name ?? '',
      type,
      kind: localKind(canonical),
      ...where,
      addressTaken: false,
      addressUses: [],
      vla: isVariablyModified(type) || isVariablyModified(canonical),
      static: d.storageClass === 'static' || d.storageClass === 'extern',
    };
    this.locals.push(local);
    if (d.id) this.byId.set(d.id, local);
    return local;
  }

  private onVarDecl(d: AstNode, stmt: StmtCtx): void {
    if (!d.name) return;
    const parent = this.path[this.path.length - 1];
    const declStmt = parent?.kind === 'DeclStmt' ? parent : d;
    const decl = { start: rangeOf(declStmt).start, end: stmtEnd(declStmt, this.text) };
    const init = d.init ? d.inner?.filter((c) => c.kind && !c.kind.endsWith('Attr')).pop() : undefined;
    const declaratorEnd = init ? this.equalsBefore(rangeOf(init).start) : rangeOf(d).end;
    const scopeEnd = this.scopeEnds[this.scopeEnds.length - 1] ?? stmt.range.end;
    const local = this.addLocal(d, { param: false, decl, scope: { start: declaratorEnd, end: scopeEnd } });
    if (init) {
      const r = rangeOf(init);
      const simple = local.kind !== 'bytes' && !hasSideEffects(init, true);
      local.initializer = { start: r.start, end: r.end, simple };
    }
  }

  /** The offset of the `=` before an initializer (or the initializer's start). */
  private equalsBefore(offset: number): number {
    let p = offset - 1;
    while (p >= 0 && isSpace(this.text[p])) p--;
    return p >= 0 && this.text[p] === 0x3d ? p : offset;
  }

  /** The node being visited is an array decaying only to be indexed or dereferenced. */
  private transientDecay(): boolean {
    let i = this.path.length - 1;
    while (i >= 0 && this.path[i].kind === 'ParenExpr') i--;
    const p = this.path[i];
    return (
      !!p &&
      (p.kind === 'ArraySubscriptExpr' ||
        (p.kind === 'UnaryOperator' && p.opcode === '*') ||
        p.kind === 'MemberExpr')
    );
  }

  /** `&x`, `&x.f`, `&x[i]` or a kept decay of array x: x's address is taken; notes how it is used. */
  private onAddress(at: AstNode, operand: AstNode | undefined): void {
    const local = this.baseLocal(operand);
    if (!local || local.static) return;
    local.addressTaken = true;
    local.addressUses.push({ line: this.lineAt(rangeOf(at).start), use: this.addressUse(at) });
  }

  /** The local an lvalue designates (through parentheses, `.` and indexing of arrays). */
  private baseLocal(n: AstNode | undefined): LocalInfo | undefined {
    while (n) {
      if (n.kind === 'ParenExpr' || (n.kind === 'MemberExpr' && !n.isArrow)) n = n.inner?.[0];
      else if (n.kind === 'ArraySubscriptExpr') {
        const base = n.inner?.[0];
        if (base?.kind !== 'ImplicitCastExpr' || base.castKind !== 'ArrayToPointerDecay') return undefined;
        n = base.inner?.[0];
      } else break;
    }
    return n?.kind === 'DeclRefExpr' ? this.byId.get(n.referencedDecl?.id ?? '') : undefined;
  }

  /** What the expression holding an address (being visited, its parents on the path) does with it. */
  private addressUse(at: AstNode): FrameLocal['addressUses'][number]['use'] {
    let child = at;
    let i = this.path.length - 1;
    // Through parentheses, casts and pointer arithmetic (`buf + len` is still buf's address).
    const transparent = (n: AstNode) =>
      /^(ParenExpr|ImplicitCastExpr|CStyleCastExpr)$/.test(n.kind) ||
      (n.kind === 'BinaryOperator' && (n.opcode === '+' || n.opcode === '-') && /\*/.test(n.type?.qualType ?? ''));
    while (i >= 0 && transparent(this.path[i])) child = this.path[i--];
    const p = this.path[i];
    if (!p) return 'escapes';
    if (p.kind === 'CallExpr' && p.inner?.[0] !== child) return 'call-arg';
    if (p.kind === 'VarDecl')
      return this.byId.get(p.id ?? '')?.static === false ? 'local-pointer' : 'escapes';
    if (p.kind === 'BinaryOperator' && p.opcode === '=' && p.inner?.[1] === child) {
      const lhs = this.plainLocal(p.inner?.[0]);
      return lhs ? 'local-pointer' : 'escapes';
    }
    return 'escapes';
  }

  /** The non-static local a plain identifier (in parentheses or not) names. */
  private plainLocal(n: AstNode | undefined): LocalInfo | undefined {
    while (n?.kind === 'ParenExpr') n = n.inner?.[0];
    const l = n?.kind === 'DeclRefExpr' ? this.byId.get(n.referencedDecl?.id ?? '') : undefined;
    return l && !l.static ? l : undefined;
  }

  private onCall(n: AstNode, stmt: StmtCtx): void {
    const site = this.classifyCall(n);
    if (!site) return;
    const line = this.lineAt(rangeOf(n).start);
    const where = this.pointStmt && site.kind === 'point' ? this.pointStmt : stmt;
    const shape = this.pointStmt && site.kind === 'point' ? { form: 'expr' as const } : this.formOf(n, stmt);
    const raw: RawSite = { ...site, call: n, stmt: where, line, ...shape };
    const args = (n.inner ?? []).slice(site.kind === 'call' && site.pointer ? 0 : 1);
    if (raw.form === 'nested') raw.reason = this.nestedReason(stmt, site.callee, line);
    else if (raw.form === 'return') {
      raw.reason = `the call of ${site.callee}() at line ${line} is returned directly; store its result in a local and return that`;
    } else if (site.kind === 'point' && !site.callee) {
      raw.reason = `the update point at line ${line} has no literal name`;
    } else if (args.some((a) => hasSideEffects(a, false))) {
      raw.reason = `the arguments of the call of ${site.callee}() at line ${line} have side effects (a call, an assignment, ++ or --); compute them into locals first`;
    }
    this.sites.push(raw);
  }

  /** Whether and how a call is a site; undefined for library calls (and helpers inside a point). */
  private classifyCall(n: AstNode): { kind: FrameSiteKind; callee: string; pointer?: boolean } | undefined {
    const calleeExpr = n.inner?.[0];
    const core = stripCasts(calleeExpr);
    if (
      core?.kind === 'DeclRefExpr' &&
      core.referencedDecl?.kind === 'FunctionDecl' &&
      core.referencedDecl.name
    ) {
      const name = core.referencedDecl.name;
      if (this.opts.pointFunctions.has(name)) {
        const arg = stripCasts(n.inner?.[1]);
        const label =
          arg?.kind === 'StringLiteral' && typeof arg.value === 'string' ? stringLiteralValue(arg.value) : '';
        return { kind: 'point', callee: label };
      }
      if (this.pointStmt) return undefined;
      if (this.opts.isProgramFunction(name)) return { kind: 'call', callee: name };
      if (this.opts.blocking.has(name)) return { kind: 'wait', callee: name };
      return undefined;
    }
    if (this.pointStmt || !calleeExpr) return undefined;
    const r = rangeOf(calleeExpr);
    return { kind: 'call', callee: normalizeType(this.text.toString('utf8', r.start, r.end)), pointer: true };
  }

  /** The statement form of a call: its own statement, the value of an assignment, a declaration or a return. */
  private formOf(n: AstNode, stmt: StmtCtx): { form: FrameSite['form']; declared?: string } {
    const s = stmt.node;
    if (stripCasts(s) === n) return { form: 'expr' };
    if (s.kind === 'BinaryOperator' && s.opcode === '=' && stripCasts(s.inner?.[1]) === n) {
      return { form: this.plainLocal(s.inner?.[0]) ? 'assign' : 'nested' };
    }
    if (s.kind === 'DeclStmt') {
      const vars = (s.inner ?? []).filter((c) => c.kind === 'VarDecl');
      const v = vars[0];
      const init = v?.inner?.filter((c) => c.kind && !c.kind.endsWith('Attr')).pop();
      if (vars.length === 1 && v.init && stripCasts(init) === n && v.storageClass !== 'static') {
        return { form: 'decl', declared: v.name };
      }
    }
    if (s.kind === 'ReturnStmt' && stripCasts(s.inner?.[0]) === n) return { form: 'return' };
    return { form: 'nested' };
  }

  /** Why a call that is not a statement of its own cannot be resumed, in the user's words. */
  private nestedReason(stmt: StmtCtx, callee: string, line: number): string {
    const s = stmt.node;
    const what = `the call of ${callee}() at line ${line}`;
    const fix = 'move it into its own statement (`x = f(...);`)';
    if (LOOP_WORD[s.kind]) return `${what} is inside ${LOOP_WORD[s.kind]}; ${fix}`;
    let i = this.path.length - 1;
    while (i >= 0 && /^(ParenExpr|ImplicitCastExpr|CStyleCastExpr)$/.test(this.path[i].kind)) i--;
    const parent = this.path[i];
    if (parent?.kind === 'CallExpr') return `${what} is an argument of another call; ${fix}`;
    if (s.kind === 'DeclStmt')
      return `${what} is in a declaration of several variables or a static one; declare the variable on its own`;
    if (s.kind === 'BinaryOperator' && s.opcode === '=')
      return `${what} is assigned to something other than a local variable; assign it to a local first`;
    return `${what} is part of a larger expression; ${fix}`;
  }

  /** The locals and sites, with ordinals, ids, the locals in scope and resumability. */
  finish(): FunctionFrameInfo {
    const counts = new Map<string, number>();
    const sites = this.sites.map((r): FrameSite => {
      const key = `${r.kind}:${r.callee}`;
      const ordinal = counts.get(key) ?? 0;
      counts.set(key, ordinal + 1);
      const st = r.stmt.range;
      const inScope = this.locals.filter(
        (l) =>
          !l.static &&
          ((l.decl.end <= st.start && l.scope.start <= st.start && st.end <= l.scope.end) ||
            (r.form === 'decl' && l.name === r.declared && l.decl.start === st.start)),
      );
      const vla = inScope.find((l) => l.vla);
      const reason =
        r.reason ??
        (vla
          ? `the variable-length array ${vla.name} is in scope at the call of ${r.callee}() at line ${r.line}; its size is not known when the frame is rebuilt`
          : undefined);
      return {
        kind: r.kind,
        callee: r.callee,
        ordinal,
        id: r.kind === 'point' ? `point:${r.callee}` : `${key}#${ordinal}`,
        line: r.line,
        statement: { start: st.start, end: st.end },
        call: rangeOf(r.call),
        returnsVoid: (r.call.type?.qualType ?? '').trim() === 'void',
        form: r.form,
        inBracelessBody: r.stmt.braceless,
        locals: inScope.map((l) => l.name),
        resumable: !reason,
        ...(reason ? { reason } : {}),
      };
    });
    const locals = this.locals.map(({ id: _id, ...l }) => l);
    return { locals, sites };
  }
}


/** A call, an assignment, ++/--, a statement expression (and, when asked, a comma) anywhere under `n`. */
function hasSideEffects(n: AstNode | undefined, comma: boolean): boolean {
  if (!n?.kind) return false;
  if (n.kind === 'UnaryExprOrTypeTraitExpr') return false;
  if (n.kind === 'CallExpr' || n.kind === 'CompoundAssignOperator' || n.kind === 'StmtExpr') return true;
  if (n.kind === 'BinaryOperator' && (n.opcode === '=' || (comma && n.opcode === ','))) return true;
  if (n.kind === 'UnaryOperator' && (n.opcode === '++' || n.opcode === '--')) return true;
  return (n.inner ?? []).some((c) => hasSideEffects(c, comma));
}

const QUALIFIERS = /\b(const|volatile|restrict|__restrict|_Atomic)\b/g;
const UINT = /^(unsigned( (char|short|int|long|long long|__int128))?( int)?|_Bool|bool)$/;
const INT = /^(signed )?(char|short|int|long|long long|__int128)( int)?$|^signed$|^enum /;

/** How a value of a (canonical) type is saved: integer, pointer or plain bytes. */
function localKind(type: string): FrameLocal['kind'] {
  const t = type.replace(QUALIFIERS, ' ').replace(/\s+/g, ' ').trim();
  if (/\(\*+ ?\)/.test(t) || t.endsWith('*')) return 'ptr';
  if (t.endsWith(']')) return 'bytes';
  if (UINT.test(t)) return 'uint';
  if (INT.test(t)) return 'int';
  return 'bytes';
}

/** An array bound that is not a constant (clang prints constant bounds as numbers). */
function isVariablyModified(type: string): boolean {
  for (const m of type.matchAll(/\[([^\]]*)\]/g)) {
    const bound = m[1].replace(/\b(static|const|volatile|restrict)\b/g, '').trim();
    if (bound && !/^\d+$/.test(bound)) return true;
  }
  return false;
}
