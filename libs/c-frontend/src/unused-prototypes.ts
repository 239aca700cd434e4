import { scanTokens } from './tokenizer';

/** Names that can stand before a `(` in a declaration without being the declared function. */
const NOT_A_PROTOTYPE_NAME = new Set([
  '__attribute__',
  '__attribute',
  '__asm__',
  '__asm',
  'asm',
  '__typeof__',
  '__typeof',
  'typeof',
  '__typeof_unqual__',
  'typeof_unqual',
  '_Static_assert',
  'static_assert',
  'sizeof',
  '_Alignof',
  '__alignof__',
  'alignof',
  '_Alignas',
  'alignas',
  '__declspec',
  '_Generic',
  '__extension__',
]);

/**
 * The unit as the JSON AST dump reads it: function prototypes outside the program (system and
 * runtime headers) whose name the unit never uses again are blanked out with spaces, newlines
 * kept, so every byte offset, line and column stays what it was. Nothing can refer to such a
 * declaration (C refers to a function only by its name), and they are a large part of a typical
 * dump (glibc's headers declare hundreds of functions a unit does not call). Only the plain form
 * is blanked: `... name(...) ...;` at file scope, one declarator, no body, initializer, typedef,
 * directive or line marker inside.
 */
export function blankUnusedPrototypes(
  unit: Buffer,
  inProgram: (offset: number) => boolean,
): { text: Buffer; declarations: number } {
  const tokens = scanTokens(unit);
  const uses = new Map<string, number>();
  const count = (id: string) => uses.set(id, (uses.get(id) ?? 0) + 1);
  for (const t of tokens) {
    const c = t.text.charCodeAt(0);
    if (c === 0x23 /* # */)
      for (const m of t.text.matchAll(/[A-Za-z_$][\w$]*/g)) count(m[0]); // #pragma lines
    else if (/^[A-Za-z_$]/.test(t.text)) count(t.text);
  }
  let text: Buffer | undefined;
  let declarations = 0;
  let depth = 0;
  let start = 0; // first token of the current file-scope declaration
  let name: string | undefined; // token before the first `(` at file scope
  let plain = true;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i].text;
    if (t === '(' || t === '[' || t === '{') {
      if (depth === 0 && t === '(' && name === undefined) name = i > start ? tokens[i - 1].text : '';
      if (depth === 0 && t === '{') plain = false;
      depth++;
      continue;
    }
    if (t === ')' || t === ']' || t === '}') {
      depth--;
      continue;
    }
    if (depth !== 0) continue;
    if (t === '=' || t === ',' || t === 'typedef' || t.startsWith('#')) plain = false;
    if (t !== ';') continue;
    const from = tokens[start].start;
    const to = tokens[i].end;
    if (
      plain &&
      name &&
      /^[A-Za-z_$][\w$]*$/.test(name) &&
      !NOT_A_PROTOTYPE_NAME.has(name) &&
      uses.get(name) === 1 &&
      !inProgram(from) &&
      !inProgram(tokens[i].start) &&
      !unit.subarray(from, to).includes('\n#')
    ) {
      text ??= Buffer.from(unit);
      for (let p = from; p < to; p++) if (text[p] !== 0x0a) text[p] = 0x20;
      declarations++;
    }
    start = i + 1;
    name = undefined;
    plain = true;
  }
  return { text: text ?? unit, declarations };
}
