import { join } from 'node:path';
import type { PointRule } from '@dsu/analysis';
import type { EvalCase } from './cases';
import { buildCase, forcedBundle, forcedTrial, judgedBy, pointsOf, type Trial } from './run-case';

export type Check = PointRule | 'combined';
export const CHECKS: Check[] = ['activeness', 'con-freeness', 'version-consistency', 'combined'];

export interface JudgedTrial extends Trial {
  allowedBy: Record<Check, boolean>;
}

export interface CaseResult {
  name: string;
  fixture: string;
  points: string[];
  trials: JudgedTrial[];
}

/** Every case: build, patch, then one forced trial per update point and arming position. */
export async function evaluate(
  cases: readonly EvalCase[],
  work: string,
  log: (msg: string) => void = () => undefined,
): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const built = await buildCase(c, work);
    const points = pointsOf(built);
    const trials: JudgedTrial[] = [];
    for (const point of points) {
      const bundle = await forcedBundle(built, point, join(work, c.fixture));
      const allowedBy = judgedBy(built, point) as Record<Check, boolean>;
      for (const at of c.armBefore) {
        const t = await forcedTrial(built, c, bundle, point, at, join(work, c.fixture, 'run'));
        log(
          `${c.fixture} @${point} armed before #${at}: ${t.applied ? (t.correct ? 'correct' : 'ERRONEOUS') : 'not applied'} (${t.detail})`,
        );
        trials.push({ ...t, allowedBy });
      }
    }
    results.push({ name: c.name, fixture: c.fixture, points, trials });
  }
  return results;
}

export interface Score {
  correct: number;
  correctAllowed: number;
  erroneous: number;
  erroneousDenied: number;
}

/** Per check: how many correct updates it allows and how many erroneous ones it denies (applied trials only). */
export function score(results: readonly CaseResult[]): Record<Check, Score> {
  const out = Object.fromEntries(
    CHECKS.map((k) => [k, { correct: 0, correctAllowed: 0, erroneous: 0, erroneousDenied: 0 }]),
  ) as Record<Check, Score>;
  for (const t of results.flatMap((r) => r.trials)) {
    if (!t.applied && t.correct) continue; // the point was not reached: nothing was tested
    for (const k of CHECKS) {
      const s = out[k];
      if (t.correct) {
        s.correct++;
        if (t.allowedBy[k]) s.correctAllowed++;
      } else {
        s.erroneous++;
        if (!t.allowedBy[k]) s.erroneousDenied++;
      }
    }
  }
  return out;
}

const pct = (a: number, b: number) => (b === 0 ? 'n/a' : `${Math.round((100 * a) / b)} %`);

/** The results as the tables of docs/safety-evaluation.md. */
export function markdown(results: readonly CaseResult[]): string {
  const s = score(results);
  const lines = [
    '| check | correct updates allowed | erroneous updates denied |',
    '| --- | --- | --- |',
    ...CHECKS.map(
      (k) =>
        `| ${k} | ${s[k].correctAllowed} / ${s[k].correct} (${pct(s[k].correctAllowed, s[k].correct)}) | ${s[k].erroneousDenied} / ${s[k].erroneous} (${pct(s[k].erroneousDenied, s[k].erroneous)}) |`,
    ),
    '',
    '| version pair | update point | armed before request | outcome | activeness | con-freeness | version consistency | combined |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const yes = (b: boolean) => (b ? 'allows' : 'denies');
  for (const r of results)
    for (const t of r.trials)
      lines.push(
        `| ${r.fixture} (${r.name}) | ${t.point} | ${t.armBefore} | ${!t.applied && t.correct ? 'not reached' : t.correct ? 'correct' : 'erroneous'} | ` +
          `${CHECKS.map((k) => yes(t.allowedBy[k])).join(' | ')} |`,
      );
  return lines.join('\n') + '\n';
}
