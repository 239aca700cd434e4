/**
 * Line markers of a preprocessed (`.i`) unit: `# 12 "src/conn.c" 2 3`. They are the only
 * reliable way to tell program code from system headers in the one offset space of the `.i`
 * buffer (clang's JSON AST prints file names only when they change).
 */
export interface MarkedRegion {
  /** Byte offset in the `.i` buffer where the region's text starts (after the marker line). */
  start: number;
  /** Byte offset where the next region starts (or the buffer ends). */
  end: number;
  file: string;
  /** Line number of the region's first line in `file`. */
  line: number;
  /** Flag 3: the text comes from a system header. */
  system: boolean;
}

const MARKER = /^# (\d+) "((?:[^"\\]|\\.)*)"((?: \d)*)$/;

export function parseLineMarkers(unit: Buffer): MarkedRegion[] {
  const regions: MarkedRegion[] = [];
  let pos = 0;
  while (pos < unit.length) {
    let eol = unit.indexOf(0x0a, pos);
    if (eol < 0) eol = unit.length;
    if (unit[pos] === 0x23 /* # */) {
      const m = MARKER.exec(unit.toString('utf8', pos, eol));
      if (m) {
        if (regions.length > 0) regions[regions.length - 1].end = pos;
        const flags = m[3].trim().split(' ').filter(Boolean);
        regions.push({
          start: eol + 1,
          end: unit.length,
          file: m[2].replace(/\\(.)/g, '$1'),
          line: Number(m[1]),
          system: flags.includes('3'),
        });
      }
    }
    pos = eol + 1;
  }
  return regions;
}

/** The region holding a byte offset (binary search), or undefined before the first marker. */
export function regionAt(regions: readonly MarkedRegion[], offset: number): MarkedRegion | undefined {
  let lo = 0;
  let hi = regions.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (offset < regions[mid].start) hi = mid - 1;
    else if (offset >= regions[mid].end) lo = mid + 1;
    else return regions[mid];
  }
  return undefined;
}
