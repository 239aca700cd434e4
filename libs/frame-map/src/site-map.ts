/**
 * Site half of a frame map: where a frame stopped at an old site resumes in the new function.
 * The runtime matches sites by name (ABI.md §11) and aborts on a site it cannot find, so every
 * old site must get a new one here or be reported.
 */
import type { SiteMapping } from './frame-map';
import { framesSnippet, nameList } from './patch-yaml';

const AGAIN = ':again';

const isAgain = (site: string): boolean => site.endsWith(AGAIN);

/** `kind:callee` without the ordinal: what call-site correspondence compares. */
const shapeOf = (site: string): string => site.replace(/#\d+$/, '');

/**
 * Where an old wait's `:again` site resumes when its base resumes at `to`: at the new wait's own
 * `:again` (the interrupted call is made again there), else at `to` (a point or call has one form).
 */
function againTarget(to: string, newSites: ReadonlySet<string>): string {
  return to.startsWith('wait:') && !isAgain(to) && newSites.has(to + AGAIN) ? to + AGAIN : to;
}

/**
 * Longest common subsequence of the two shape sequences, in order. Among the longest alignments it
 * keeps the one with the most identical names, so an ambiguous pair (`[f]` against `[f, f]`) stays
 * 'same' rather than moving for no evidence. Returns old index → new index.
 */
function alignSites(oldSites: readonly string[], newSites: readonly string[]): Map<number, number> {
  const n = oldSites.length;
  const m = newSites.length;
  // Score = matches * w + same-named matches; w exceeds any same-name count, so length wins first.
  const w = Math.min(n, m) + 1;
  const gain = (i: number, j: number): number =>
    shapeOf(oldSites[i]) !== shapeOf(newSites[j]) ? -1 : w + (oldSites[i] === newSites[j] ? 1 : 0);
  // best[i][j]: best score of the suffixes oldSites[i..], newSites[j..].
  const best = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      const g = gain(i, j);
      best[i][j] = Math.max(best[i + 1][j], best[i][j + 1], g < 0 ? 0 : g + best[i + 1][j + 1]);
    }
  }
  const pairs = new Map<number, number>();
  for (let i = 0, j = 0; i < n && j < m;) {
    const g = gain(i, j);
    if (g >= 0 && best[i][j] === g + best[i + 1][j + 1]) pairs.set(i++, j++);
    else if (best[i][j] === best[i + 1][j]) i++;
    else j++;
  }
  return pairs;
}

/** Overrides naming sites that do not exist are problems, and are left out of the result. */
function validResumes(
  fn: string,
  oldSites: readonly string[],
  newSites: readonly string[],
  resume: Readonly<Record<string, string>>,
): { valid: Map<string, string>; problems: string[] } {
  const valid = new Map<string, string>();
  const problems: string[] = [];
  const where = `function '${fn}': patch.yaml frames.${fn}.resume`;
  // The :again forms are valid targets too, but listing each would double the list.
  const listed = (sites: readonly string[]) =>
    nameList(sites.filter((s) => !isAgain(s))) + (sites.some(isAgain) ? ", or a wait's :again" : '');
  for (const [from, to] of Object.entries(resume)) {
    if (!oldSites.includes(from)) {
      problems.push(
        `${where} names '${from}', which the running version cannot stop at (its sites: ${listed(oldSites)})`,
      );
    } else if (!newSites.includes(to)) {
      problems.push(
        `${where} resumes '${from}' at '${to}', which the new version does not have (its sites: ${listed(newSites)})`,
      );
    } else valid.set(from, to);
  }
  return { valid, problems };
}

/** The problem for an old base site that nothing maps: quotes the override to write. */
function missingSite(fn: string, site: string, newBase: readonly string[]): string {
  const hint =
    newBase.length > 0 ? `a site of the new ${fn}: ${newBase.join(', ')}` : `the new ${fn} has no sites`;
  return (
    `function '${fn}': the running version can stop at '${site}', which the new version does not have; ` +
    `say where such a frame resumes, ${framesSnippet(fn, 'resume', `{ "${site}": "<${hint}>" }`)}`
  );
}

/**
 * Maps every old site (in `oldSites` order) to a new one. A patch.yaml override wins; otherwise a
 * base site takes its call-site correspondent, and a `:again` follows its wait. Pure.
 */
export function mapSites(
  fn: string,
  oldSites: readonly string[],
  newSites: readonly string[],
  resume: Readonly<Record<string, string>> = {},
): { sites: SiteMapping[]; problems: string[] } {
  const { valid, problems } = validResumes(fn, oldSites, newSites, resume);
  const oldBase = oldSites.filter((s) => !isAgain(s));
  const newBase = newSites.filter((s) => !isAgain(s));
  const pairs = alignSites(oldBase, newBase);
  const newSet = new Set(newSites);
  const byBase = new Map<string, SiteMapping>();
  const sites: SiteMapping[] = [];
  for (const from of oldSites) {
    const mapping = mapOne(from);
    if (mapping) sites.push(mapping);
  }
  return { sites, problems };

  function mapOne(from: string): SiteMapping | undefined {
    const over = valid.get(from);
    if (over !== undefined) return record(from, { from, to: over, how: 'override' });
    if (isAgain(from)) {
      // Its wait was reported already when unmapped; the :again adds nothing to say.
      const base = byBase.get(from.slice(0, -AGAIN.length));
      return base && { from, to: againTarget(base.to, newSet), how: base.how };
    }
    const j = pairs.get(oldBase.indexOf(from));
    if (j === undefined) {
      problems.push(missingSite(fn, from, newBase));
      return undefined;
    }
    const to = newBase[j];
    return record(from, { from, to, how: to === from ? 'same' : 'moved' });
  }

  function record(from: string, mapping: SiteMapping): SiteMapping {
    byBase.set(from, mapping);
    return mapping;
  }
}
