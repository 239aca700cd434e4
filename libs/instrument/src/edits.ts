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
    .sort((a, b) => a.e.start - b.e.start || a.e.end - b.e.end || a.i - b.i)
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
