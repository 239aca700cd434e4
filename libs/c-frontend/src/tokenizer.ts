import { createHash } from 'node:crypto';

/**
 * A small C tokenizer over the bytes of a preprocessed unit, used for body hashes: whitespace,
 * comments and `.i` line markers (`# 12 "file" 2`) are dropped, every other token is kept with
 * its exact spelling. `#pragma` lines are kept as one token (they change code generation).
 */
const PUNCTUATORS = [
  '%:%:',
  '...',
  '<<=',
  '>>=',
  '->',
  '++',
  '--',
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '&&',
  '||',
  '*=',
  '/=',
  '%=',
  '+=',
  '-=',
  '&=',
  '^=',
  '|=',
  '##',
  '<:',
  ':>',
  '<%',
  '%>',
  '%:',
];

const isIdStart = (c: number) =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x24 || c >= 0x80;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isIdChar = (c: number) => isIdStart(c) || isDigit(c);
const isSpace = (c: number) =>
  c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;

/** A token with its byte range in the unit. */
export interface Token {
  text: string;
  start: number;
  end: number;
}

/** Tokens of `buf[start, end)` as latin1 strings (one char per byte, so spellings are exact). */
export function tokenize(buf: Buffer, start = 0, end = buf.length): string[] {
  return scanTokens(buf, start, end).map((t) => t.text);
}

/** Tokens of `buf[start, end)` with their byte offsets (for byte-offset rewriting). */
export function scanTokens(buf: Buffer, start = 0, end = buf.length): Token[] {
  const out: Token[] = [];
  scan(buf.toString('latin1', start, end), (text, at, e) =>
    out.push({ text, start: start + at, end: start + e }),
  );
  return out;
}

/** Calls `emit` with each token and its start and end offsets in `s`. */
function scan(s: string, emit: (token: string, at: number, end: number) => void): void {
  const n = s.length;
  let i = 0;
  let lineStart = true;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x0a) {
      lineStart = true;
      i++;
      continue;
    }
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === 0x2f && s.charCodeAt(i + 1) === 0x2a) {
      const e = s.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
      continue;
    }
    if (c === 0x2f && s.charCodeAt(i + 1) === 0x2f) {
      const e = s.indexOf('\n', i);
      i = e < 0 ? n : e;
      continue;
    }
    if (c === 0x23 /* # */ && lineStart) {
      let e = s.indexOf('\n', i);
      if (e < 0) e = n;
      const line = s.slice(i, e);
      // line markers (`# 12 "f.c" 2`, `#line 12`) carry no code; keep other directives (#pragma)
      if (!/^#\s*(line\s+)?\d/.test(line)) emit(line.replace(/\s+/g, ' ').trim(), i, e);
      i = e;
      continue;
    }
    lineStart = false;
    const t0 = i;
    if (isIdStart(c)) {
      while (i < n && isIdChar(s.charCodeAt(i))) i++;
      // encoding prefixes of string / char literals: L"x", u8"x", u'x', U"x"
      const q = s.charCodeAt(i);
      const id = s.slice(t0, i);
      if ((q === 0x22 || q === 0x27) && (id === 'L' || id === 'u' || id === 'U' || id === 'u8')) {
        i = skipQuoted(s, i);
      }
      emit(s.slice(t0, i), t0, i);
      continue;
    }
    if (isDigit(c) || (c === 0x2e && isDigit(s.charCodeAt(i + 1)))) {
      // pp-number: digits, letters, _, ., and e+/e-/p+/p- sign pairs
      i++;
      while (i < n) {
        const d = s.charCodeAt(i);
        if ((d === 0x2b || d === 0x2d) && /[eEpP]/.test(s[i - 1])) i++;
        else if (isIdChar(d) || d === 0x2e || d === 0x27) i++;
        else break;
      }
      emit(s.slice(t0, i), t0, i);
      continue;
    }
    if (c === 0x22 || c === 0x27) {
      i = skipQuoted(s, i);
      emit(s.slice(t0, i), t0, i);
      continue;
    }
    let p = s[i];
    for (const cand of PUNCTUATORS) {
      if (s.startsWith(cand, i)) {
        p = cand;
        break;
      }
    }
    i += p.length;
    emit(p, t0, i);
  }
}

const NOT_DECLARATOR = new Set([
  '__attribute__',
  '__attribute',
  '__declspec',
  '__asm__',
  '__asm',
  'asm',
  '_Alignas',
  'sizeof',
  '_Alignof',
  '__alignof__',
  'typeof',
  '__typeof__',
  '__typeof',
  '_Generic',
  '__extension__',
]);
/** The token before a parameter list's `(`: the function name, or `)` of a nested declarator. */
const isDeclaratorOwner = (t: string) =>
  t === ')' || (/^[A-Za-z_$][\w$]*$/.test(t) && !NOT_DECLARATOR.has(t));

/**
 * Replaces the bodies of file-scope function definitions with `;` (a prototype), so that a unit
 * can be compiled for its types only. A definition's body is a `{` at file scope right after a
 * parenthesized group that is not an attribute / asm label (`enum __attribute__((packed)) {` is
 * not a function). K&R definitions are left alone.
 */
export function stripFunctionBodies(unit: Buffer): Buffer {
  const s = unit.toString('latin1');
  const cuts: [number, number][] = [];
  let depth = 0; // ( and [ nesting
  let braces = 0;
  let bodyStart = -1;
  let prev = '';
  const openers: string[] = []; // token before each open paren at depth 0..n
  let lastGroupOwner = '';
  scan(s, (t, at) => {
    if (bodyStart >= 0) {
      if (t === '{') braces++;
      else if (t === '}' && --braces === 0) {
        cuts.push([bodyStart, at + 1]);
        bodyStart = -1;
        prev = ';';
      }
      return;
    }
    if (t === '(' || t === '[') {
      openers.push(prev);
      depth++;
    } else if (t === ')' || t === ']') {
      depth--;
      const owner = openers.pop() ?? '';
      if (depth === 0 && t === ')') lastGroupOwner = owner;
    } else if (t === '{' && depth === 0) {
      if (braces === 0 && prev === ')' && isDeclaratorOwner(lastGroupOwner)) {
        bodyStart = at;
        braces = 1;
        return;
      }
      braces++;
    } else if (t === '}' && depth === 0) braces--;
    prev = t;
  });
  if (cuts.length === 0) return unit;
  const parts: Buffer[] = [];
  let pos = 0;
  for (const [a, b] of cuts) {
    parts.push(unit.subarray(pos, a), Buffer.from(';'));
    pos = b;
  }
  parts.push(unit.subarray(pos));
  return Buffer.concat(parts);
}

function skipQuoted(s: string, i: number): number {
  const q = s.charCodeAt(i);
  i++;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) i += 2;
    else if (c === q) return i + 1;
    else if (c === 0x0a)
      return i; // unterminated: stop at the end of the line
    else i++;
  }
  return i;
}

/** sha256 over a token sequence (tokens separated by a newline, which no token contains). */
export function hashTokens(tokens: readonly string[], prefix = ''): string {
  const h = createHash('sha256');
  h.update(prefix, 'latin1');
  for (const t of tokens) {
    h.update(t, 'latin1');
    h.update('\n');
  }
  return h.digest('hex');
}
