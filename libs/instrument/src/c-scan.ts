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
 * The body of the outermost loop of a function body (the first `for`, `while` or `do` at the
 * smallest brace depth), as the offset just after the loop body's `{`. Undefined when the
 * function has no loop or the loop body is not a block.
 */
export function outermostLoopBodyStart(unit: Buffer, body: ByteRange): { offset: number } | { error: string } {
  const toks = scanTokens(unit, body.start, body.end);
  let best: { index: number; depth: number } | undefined;
  let depth = 0;
  toks.forEach((t, i) => {
    if (t.text === '{') depth++;
    else if (t.text === '}') depth--;
    else if ((t.text === 'for' || t.text === 'while' || t.text === 'do') && (!best || depth < best.depth)) {
      // `while` closing a do-loop is part of that loop, not a new one
      if (t.text === 'while' && i > 0 && toks[i - 1].text === '}' && isDoTail(toks, i)) return;
      best = { index: i, depth };
    }
  });
  if (!best) return { error: 'has no loop' };
  let i = best.index + 1;
  if (toks[best.index].text !== 'do') {
    if (toks[i]?.text !== '(') return { error: 'has a loop whose condition could not be read' };
    let d = 0;
    for (; i < toks.length; i++) {
      if (toks[i].text === '(') d++;
      else if (toks[i].text === ')' && --d === 0) break;
    }
    i++;
  }
  if (toks[i]?.text !== '{') return { error: "has an outermost loop whose body is not a block ('{ ... }')" };
  return { offset: toks[i].end };
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
