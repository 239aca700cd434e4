import type { AstLoc, AstNode } from './ast';
import type { ByteRange } from './unit-analysis';

/** A type spelling without clang's source locations of unnamed types and extra blanks. */
export const normalizeType = (t: string): string =>
  t
    .replace(/\((unnamed|anonymous)( \w+)? at [^)]*\)/g, '($1$2)')
    .replace(/\s+/g, ' ')
    .trim();

/** The byte range of an AST node in the `.i` buffer. */
export const rangeOf = (n: { range?: { begin: AstLoc; end: AstLoc } }): ByteRange => ({
  start: n.range?.begin.offset ?? -1,
  end: (n.range?.end.offset ?? -1) + (n.range?.end.tokLen ?? 0),
});
/** The byte range of a location's token. */
export const locRange = (l: AstLoc | undefined): ByteRange => ({
  start: l?.offset ?? -1,
  end: (l?.offset ?? -1) + (l?.tokLen ?? 0),
});

/** The expression under implicit and explicit casts and parentheses. */
export function stripCasts(n: AstNode | undefined): AstNode | undefined {
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
export function stringLiteralValue(spelling: string): string {
  const body = spelling.replace(/^(u8|u|U|L)?"/, '').replace(/"$/, '');
  return body.replace(
    /\\(["'\\?abfnrtv])/g,
    (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c as 'n'] ?? c,
  );
}

/** A `do { static struct dsu_point_site dsu__site_...; ... } while (0)`: an expanded DSU_UPDATE_POINT. */
export function isUpdatePointBlock(n: AstNode): boolean {
  const body = n.inner?.[0];
  return !!body?.inner?.some(
    (s) =>
      s.kind === 'DeclStmt' && s.inner?.some((v) => v.kind === 'VarDecl' && v.name?.startsWith('dsu__site')),
  );
}

/** The id of the tagged type a typedef defines inline, if any. */
export function findOwnedTag(d: AstNode): string | undefined {
  const stack = [...(d.inner ?? [])];
  while (stack.length) {
    const n = stack.pop() as AstNode;
    if (n.ownedTagDecl?.id) return n.ownedTagDecl.id;
    if (n.inner) stack.push(...n.inner);
  }
  return undefined;
}

/** The first literal value under a node (a bit-field's width). */
export function findValue(n: AstNode): string | undefined {
  const stack = [...(n.inner ?? [])];
  while (stack.length) {
    const c = stack.shift() as AstNode;
    if (typeof c.value === 'string') return c.value;
    if (c.inner) stack.push(...c.inner);
  }
  return undefined;
}

/** A loop statement (`do { ... } while (0)`, the macro idiom, is not a loop). */
export function isLoop(n: AstNode): boolean {
  if (n.kind === 'ForStmt' || n.kind === 'WhileStmt') return true;
  if (n.kind !== 'DoStmt') return false;
  const cond = stripCasts(n.inner?.[1]);
  return !(cond?.kind === 'IntegerLiteral' && cond.value === '0');
}

/** Statements whose last child is a statement of their own (a body). */
export const NESTING = new Set([
  'IfStmt',
  'WhileStmt',
  'ForStmt',
  'SwitchStmt',
  'CaseStmt',
  'DefaultStmt',
  'LabelStmt',
]);

/** The end of a statement through its `;` (a control statement: through its last body). */
export function stmtEnd(n: AstNode, text: Buffer): number {
  const inner = n.inner ?? [];
  if (NESTING.has(n.kind) && inner.length && inner[inner.length - 1]?.kind) {
    return stmtEnd(inner[inner.length - 1], text);
  }
  const end = rangeOf(n).end;
  if (n.kind === 'CompoundStmt' || text[end - 1] === 0x3b) return end;
  let p = end;
  while (p < text.length && isSpace(text[p])) p++;
  return text[p] === 0x3b ? p + 1 : end;
}

export const isSpace = (b: number | undefined): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
