import type { AstNode } from '../ast';
import { locRange, normalizeType, rangeOf } from '../ast-helpers';
import { symbolKey, type GlobalModel } from '../program-model';
import { hashTokens, tokenize } from '../tokenizer';
import type { FunctionDeclaration, StaticVariable, VariableDeclaration } from '../unit-analysis';
import type { DecodeContext, FnCtx } from './context';

/**
 * Decodes the unit's declarations of functions and variables: the function declarations
 * (prototypes and definitions, to rename statics), the globals the model keys (external, file
 * static and function-local statics), and every variable declaration with its ranges. It
 * establishes the linkage facts of the shared {@link DecodeContext} that bodies resolve names by.
 */
export class Declarations {
  readonly globals: GlobalModel[] = [];
  readonly statics: StaticVariable[] = [];
  readonly variables: VariableDeclaration[] = [];
  readonly declarations: FunctionDeclaration[] = [];
  /** File-static variable names (a later `extern` of one still has internal linkage). */
  private staticVars = new Set<string>();
  /** Keys of the globals already defined (a tentative definition repeated is one global). */
  private globalKeys = new Set<string>();
  /** Function-local statics seen per `function::name`: the second and later get `name.<n>`. */
  private localStaticCount = new Map<string, number>();

  constructor(private readonly cx: DecodeContext) {}

  /** A top-level FunctionDecl; returns whether it is the definition (its body is then to be visited). */
  addFunction(d: AstNode): boolean {
    if (!d.name) return false;
    if (d.storageClass === 'static') this.cx.staticFns.add(d.name);
    this.cx.programFns.add(d.name);
    const isDefinition = !!d.inner?.some((c) => c.kind === 'CompoundStmt');
    this.declarations.push({
      key: this.cx.fnKey(d.name),
      name: d.name,
      isDefinition,
      range: rangeOf(d),
      nameRange: locRange(d.loc),
    });
    if (isDefinition) this.cx.definedFns.add(d.name);
    return isDefinition;
  }

  /** A top-level VarDecl; returns whether its initializer is program code to visit. */
  addGlobal(d: AstNode): boolean {
    if (!d.name || !d.id) return false;
    const { cx } = this;
    if (d.storageClass === 'static') this.staticVars.add(d.name);
    const isStatic = this.staticVars.has(d.name);
    const key = symbolKey(d.name, cx.unit.path, isStatic);
    cx.globalIds.set(d.id, key);
    const isDefinition = d.storageClass !== 'extern' || d.init !== undefined;
    if (!cx.isInternal(d.name)) {
      this.variables.push({
        key,
        name: d.name,
        storage: d.storageClass === 'static' ? 'static' : d.storageClass === 'extern' ? 'extern' : 'none',
        isDefinition,
        type: normalizeType(d.type?.qualType ?? ''),
        definition: rangeOf(d),
        nameRange: locRange(d.loc),
      });
    }
    if (isDefinition && !cx.isInternal(d.name) && !this.globalKeys.has(key)) {
      this.globalKeys.add(key);
      const type = normalizeType(d.type?.qualType ?? '');
      // the initializer's tokens: a changed one is reported by patches (the running value wins)
      const init = d.init !== undefined ? d.inner?.[d.inner.length - 1] : undefined;
      const initRange = init ? rangeOf(init) : undefined;
      this.globals.push({
        key,
        name: d.name,
        unit: cx.unit.path,
        type,
        linkage: isStatic ? 'internal' : 'external',
        ...(initRange && initRange.end > initRange.start
          ? {
              initHash: hashTokens(tokenize(cx.buf, initRange.start, initRange.end), ''),
              init: cx.buf.toString('utf8', initRange.start, Math.min(initRange.end, initRange.start + 200)),
            }
          : {}),
      });
      if (isStatic) {
        this.statics.push({ key, name: d.name, type, definition: rangeOf(d), nameRange: locRange(d.loc) });
      }
    }
    return true;
  }

  /**
   * A VarDecl inside a function body: a local `extern` resolves to its global, a local `static` is
   * a global of its own (`unit::function::name`); other locals are not declarations of the model.
   */
  addLocal(n: AstNode, fn: FnCtx): void {
    const { cx } = this;
    if (n.storageClass === 'extern' && n.name && n.id) {
      cx.globalIds.set(n.id, symbolKey(n.name, cx.unit.path, this.staticVars.has(n.name)));
      return;
    }
    if (n.storageClass !== 'static' || !n.name || !n.id || cx.isInternal(n.name)) return;
    // C allows `static int hits;` in two blocks of one function: each is its own object, so each
    // gets its own key (in source order, which is what a next version of the function matches).
    const seen = (this.localStaticCount.get(`${fn.key}::${n.name}`) ?? 0) + 1;
    this.localStaticCount.set(`${fn.key}::${n.name}`, seen);
    const key = `${cx.unit.path}::${fn.name}::${n.name}${seen > 1 ? `.${seen}` : ''}`;
    cx.globalIds.set(n.id, key);
    const type = normalizeType(n.type?.qualType ?? '');
    this.globals.push({
      key,
      name: n.name,
      unit: cx.unit.path,
      type,
      linkage: 'function-static',
      function: fn.key,
    });
    this.statics.push({
      key,
      name: n.name,
      function: fn.key,
      type,
      definition: rangeOf(n),
      nameRange: locRange(n.loc),
    });
    this.variables.push({
      key,
      name: n.name,
      function: fn.key,
      storage: 'static',
      isDefinition: true,
      type,
      definition: rangeOf(n),
      nameRange: locRange(n.loc),
    });
  }
}
