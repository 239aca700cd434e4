import { scanTokens, type Token } from '@dsu/c-frontend';
import type { ByteRange } from '@dsu/c-frontend';

/**
 * Where a declarator that starts with the given name ends: after its array dimensions and
 * parameter lists, before an initializer, attribute, asm label, `,` or `;`. That is where an
 * asm label goes (`int tbl[4] __asm__("x") = {...}`).
 */
export function declaratorEnd(unit: Buffer, name: ByteRange, limit: number): number {
  let depth = 0;
  let last = name.end;
  for (const t of scanTokens(unit, name.end, limit)) {
    if (depth === 0 && (t.text === '=' || t.text === ',' || t.text === ';' || t.text === '__attribute__' || t.text === '__asm__' || t.text === 'asm' || t.text === '__asm')) {
      return last;
    }
    if (t.text === '(' || t.text === '[') depth++;
    else if ((t.text === ')' || t.text === ']') && depth > 0) depth--;
    // a ')' at depth 0 closes a group opened before the name: `(*handler)(int)`
    last = t.end;
  }
  return last;
}

/** The first token spelled `text` in a range, or undefined. */
export function findToken(unit: Buffer, range: ByteRange, text: string): Token | undefined {
  return scanTokens(unit, range.start, range.end).find((t) => t.text === text);
}

/**
 * The body of a function's main loop, as the offset just after the loop body's `{`: among the
 * loops at the smallest brace depth whose body is a block, the one with the largest body (so
 * `for (i = 0; i < n; i++) x[i] = 0;` before `for (;;) { ... }` does not count).
 */
export function outermostLoopBodyStart(unit: Buffer, body: ByteRange): { offset: number } | { error: string } {
  const toks = scanTokens(unit, body.start, body.end);
  const loops: { depth: number; open: number; size: number }[] = [];
  let depth = 0;
  toks.forEach((t, i) => {
    if (t.text === '{') depth++;
    else if (t.text === '}') depth--;
    else if (t.text === 'for' || t.text === 'while' || t.text === 'do') {
      // `while` closing a do-loop is part of that loop, not a new one
      if (t.text === 'while' && i > 0 && toks[i - 1].text === '}' && isDoTail(toks, i)) return;
      const open = loopBodyOpen(toks, i);
      if (open === undefined) return;
      loops.push({ depth, open, size: matchingBrace(toks, open) - open });
    }
  });
  if (loops.length === 0) return { error: 'has no loop with a block body' };
  const top = Math.min(...loops.map((l) => l.depth));
  const main = loops.filter((l) => l.depth === top).reduce((a, b) => (b.size > a.size ? b : a));
  return { offset: toks[main.open].end };
}

/** Index of the `{` opening the body of the loop whose keyword is at index i, if it is a block. */
function loopBodyOpen(toks: readonly Token[], i: number): number | undefined {
  let j = i + 1;
  if (toks[i].text !== 'do') {
    if (toks[j]?.text !== '(') return undefined;
    for (let d = 0; j < toks.length; j++) {
      if (toks[j].text === '(') d++;
      else if (toks[j].text === ')' && --d === 0) break;
    }
    j++;
  }
  return toks[j]?.text === '{' ? j : undefined;
}

function matchingBrace(toks: readonly Token[], open: number): number {
  for (let j = open, d = 0; j < toks.length; j++) {
    if (toks[j].text === '{') d++;
    else if (toks[j].text === '}' && --d === 0) return j;
  }
  return toks.length;
}

/** Whether the `while` at index i ends a do-loop (`do { ... } while (...)`). */
function isDoTail(toks: readonly Token[], i: number): boolean {
  let d = 0;
  for (let j = i - 1; j >= 0; j--) {
    if (toks[j].text === '}') d++;
    else if (toks[j].text === '{' && --d === 0) return toks[j - 1]?.text === 'do';
  }
  return false;
}
