import type { ByteRange, UnitAnalysis } from '@dsu/c-frontend';
import { scanTokens } from '@dsu/c-frontend';
import type { Edit } from './edits';

/**
 * Function-local statics live under exported names (`__dsu_s_<unit>__<fn>__<name>`), declared in
 * the function as `extern`. C gives every block-scope `extern` of one identifier the same object,
 * so two functions (or two blocks) each with their own `static char *buff` cannot both say
 * `extern char *buff __asm__(...)` with different labels ("conflicting asm label"). Each such
 * static is therefore declared and referenced under a name of its own in the unit.
 */
export const localStaticName = (n: number) => `__dsu_sdef_${n}`;

/** Renames one function-local static (its declarator name and every reference) to `name`. */
export function renameLocalStatic(
  a: UnitAnalysis,
  s: { key: string; nameRange: ByteRange; function?: string },
  name: string,
): Edit[] {
  const edits: Edit[] = [{ start: s.nameRange.start, end: s.nameRange.end, text: name }];
  const seen = new Set<number>([s.nameRange.start]);
  for (const r of a.variableReferences)
    if (r.key === s.key && !seen.has(r.range.start)) {
      seen.add(r.range.start);
      edits.push({ start: r.range.start, end: r.range.end, text: name });
    }
  for (const t of typeOnlyUses(a, s)) if (!seen.has(t.start)) edits.push({ start: t.start, end: t.end, text: name });
  return edits;
}

const TYPE_OPERATORS = new Set(['sizeof', '_Alignof', '__alignof__', '__alignof', 'typeof', '__typeof__', '__typeof']);

/**
 * Uses of a local static the AST does not show as references: inside a constant array dimension
 * (`config_plugin_value_t cvlist[sizeof(cpk)/sizeof(cpk[0])+1]`, lighttpd) or a `__typeof__`,
 * which clang folds into the type. Found by token from the declaration to the end of its block.
 */
function typeOnlyUses(a: UnitAnalysis, s: { nameRange: ByteRange; function?: string }): ByteRange[] {
  const f = a.functions.find((x) => x.model.key === s.function);
  if (!f) return [];
  const text = a.preprocessed.toString('latin1', s.nameRange.start, s.nameRange.end);
  const toks = scanTokens(a.preprocessed, s.nameRange.end, f.body.end);
  const out: ByteRange[] = [];
  const stack: boolean[] = []; // open ( and [: whether inside a type context
  let depth = 0;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    const before = toks[i - 1]?.text ?? '';
    if (t.text === '{') depth++;
    else if (t.text === '}' && --depth < 0) break; // the end of the declaration's block
    else if (t.text === '[') stack.push(true);
    else if (t.text === '(') stack.push(stack[stack.length - 1] === true || TYPE_OPERATORS.has(before));
    else if (t.text === ')' || t.text === ']') stack.pop();
    else if (t.text === text && stack.includes(true) && before !== '.' && before !== '->') out.push({ start: t.start, end: t.end });
  }
  return out;
}

/**
 * A declaration's text as one line (inserted text must not move later lines): the preprocessor's
 * line markers (`# 1178 "./dnsmasq.h"`, left where an `#if` was) are dropped, and a `#pragma`
 * line becomes the `_Pragma` operator, since a directive is only one at the start of a line.
 */
export function oneLine(text: string): string {
  return text
    .replace(/^[ \t]*#[ \t]*(?:line[ \t]+)?\d+[^\n]*$/gm, ' ')
    .replace(/^[ \t]*#[ \t]*pragma[ \t]+([^\n]*)$/gm, (_m, p: string) => `_Pragma(${JSON.stringify(p.trim())})`)
    .replace(/\r?\n/g, ' '); // only newlines: spaces inside string literals are the program's
}

/**
 * The dimension an array declarator leaves out (`hex[]`), taken from the complete type the
 * definition has (`const char[17]`), so a declaration that drops the initializer still has a
 * complete type (`sizeof hex` works). Returns the edit filling it in, or none.
 */
export function completeArrayEdit(unit: Buffer, name: ByteRange, declEnd: number, completeType: string | undefined): Edit | undefined {
  // the first of the trailing dimensions: `const struct (unnamed struct)[3]`, `int [4][3]`
  const dim = /\[(\d+)\](?:\[\d+\])*$/.exec(completeType ?? '')?.[1];
  if (!dim) return undefined;
  const toks = scanTokens(unit, name.end, declEnd);
  if (toks[0]?.text !== '[' || toks[1]?.text !== ']') return undefined;
  return { start: toks[0].end, end: toks[1].start, text: dim };
}

/**
 * The text of `[start, end)` with the replacements that fall inside it applied: code copied from
 * the unit (a local's initializer in frame code) must say what the rewritten unit says (a local
 * static renamed by {@link renameLocalStatic}).
 */
export function textWithEdits(unit: Buffer, start: number, end: number, edits: readonly Edit[]): string {
  let out = '';
  let at = start;
  for (const e of [...edits].filter((x) => x.start >= start && x.end <= end && x.end > x.start).sort((x, y) => x.start - y.start)) {
    if (e.start < at) continue;
    out += unit.toString('latin1', at, e.start) + e.text;
    at = e.end;
  }
  return out + unit.toString('latin1', at, end);
}
