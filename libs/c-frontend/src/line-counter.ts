import { regionAt, type MarkedRegion } from './line-markers';

/**
 * Source lines of offsets in a preprocessed unit, for offsets asked in (mostly) ascending order:
 * it counts newlines from the last answer instead of from the region's start, so a whole unit
 * costs one pass over its text.
 */
export class LineCounter {
  private region: MarkedRegion | undefined;
  private offset = 0;
  private line = 0;

  constructor(
    private readonly unit: Buffer,
    private readonly regions: readonly MarkedRegion[],
  ) {}

  /** The presumed source line of `offset` (0 before the first line marker). */
  lineAt(offset: number): number {
    const r = regionAt(this.regions, offset);
    if (!r) return 0;
    if (r !== this.region || offset < this.offset) {
      this.region = r;
      this.offset = r.start;
      this.line = r.line;
    }
    const u = this.unit;
    for (let p = u.indexOf(0x0a, this.offset); p >= 0 && p < offset; p = u.indexOf(0x0a, p + 1)) this.line++;
    this.offset = offset;
    return this.line;
  }
}
