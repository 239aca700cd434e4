/**
 * Byte-offset edits of one buffer (the preprocessed unit). All offsets refer to the ORIGINAL
 * buffer, so edits planned from one AST can be applied together, in any order of planning.
 */
export interface Edit {
  /** First byte replaced (inclusive). */
  start: number;
  /** First byte kept after the replacement (exclusive); `end === start` is an insertion. */
  end: number;
  text: string;
  /**
   * This insertion is one side of a wrap around `[start, start + length)` (see {@link wrapEdits}):
   * wraps starting or ending at one offset nest by their lengths, whatever order they were planned in.
   */
  wrap?: { side: 'open' | 'close'; length: number };
}

/**
 * `before` and `after` around a range, as insertions that nest with every other wrap: the lazy
 * check of `p->next` around that of `p`, a no-resume mark around a checked call (planned apart,
 * they start and end at the same offsets).
 */
export function wrapEdits(range: { start: number; end: number }, before: string, after: string): Edit[] {
  const length = range.end - range.start;
  return [
    { start: range.start, end: range.start, text: before, wrap: { side: 'open', length } },
    { start: range.end, end: range.end, text: after, wrap: { side: 'close', length } },
  ];
}

/**
 * Order of insertions at one offset: wraps closing there (inner first), then plain insertions
 * (planning order), then wraps opening there (outer first); equal wraps close in reverse.
 */
function insertionOrder(a: { e: Edit; i: number }, b: { e: Edit; i: number }): number {
  const rank = (e: Edit) => (e.wrap?.side === 'close' ? 0 : e.wrap ? 2 : 1);
  const d = rank(a.e) - rank(b.e);
  if (d !== 0) return d;
  if (a.e.wrap?.side === 'open' && b.e.wrap) return b.e.wrap.length - a.e.wrap.length || a.i - b.i;
  if (a.e.wrap?.side === 'close' && b.e.wrap) return a.e.wrap.length - b.e.wrap.length || b.i - a.i;
  return a.i - b.i;
}

export class OverlappingEditsError extends Error {
  constructor(a: Edit, b: Edit) {
    super(`instrumentation edits overlap: [${a.start},${a.end}) and [${b.start},${b.end}); this is a dsu-cc bug, please report it with the unit`);
    this.name = 'OverlappingEditsError';
  }
}

/**
 * Applies edits to a buffer. Insertions at the same offset keep their planning order;
 * replacements must not overlap each other (an insertion may touch a replacement's ends).
 */
export function applyEdits(source: Buffer, edits: readonly Edit[]): Buffer {
  const ordered = edits
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.start - b.e.start || a.e.end - b.e.end || (a.e.end === a.e.start ? insertionOrder(a, b) : a.i - b.i))
    .map((x) => x.e);
  const parts: Buffer[] = [];
  let pos = 0;
  let prev: Edit | undefined;
  for (const e of ordered) {
    if (e.start < 0 || e.end < e.start || e.end > source.length) {
      throw new RangeError(`edit [${e.start},${e.end}) is outside the unit (0..${source.length})`);
    }
    if (prev && e.start < prev.end) throw new OverlappingEditsError(prev, e);
    parts.push(source.subarray(pos, e.start), Buffer.from(e.text, 'utf8'));
    pos = e.end;
    if (e.end > e.start) prev = e;
  }
  parts.push(source.subarray(pos));
  return Buffer.concat(parts);
}
