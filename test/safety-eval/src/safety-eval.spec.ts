import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CASES, expectedReplies, isCorrect } from './cases';
import { evaluate, score, type CaseResult } from './evaluate';

// The sample the test suite runs: the permission example (version consistency) and the
// stack-struct example (activeness, con-freeness). bench/safety-eval/run runs every case.
const SAMPLE = CASES.filter((c) => c.fixture === 'permission' || c.fixture === 'stackstruct');

describe('the specifications the oracle uses', () => {
  it('explain a clean switch and nothing else', () => {
    const split = CASES.find((c) => c.fixture === 'split');
    if (!split) throw new Error('no split case');
    expect(isCorrect(split, expectedReplies(split, 3))).toBe(true);
    const doubled = expectedReplies(split, 3).map((r, i) =>
      i >= 3 ? r.replace(/#(\d+)/, (_, n) => `#${Number(n) + 1}`) : r,
    );
    expect(isCorrect(split, doubled)).toBe(false);
  });
});

describe('safety evaluation (sample): every update forced at every reachable point', () => {
  let work: string;
  let results: CaseResult[];
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'dsu-safety-eval-'));
    results = await evaluate(
      SAMPLE,
      work,
      process.env.DSU_EVAL_VERBOSE ? (m) => process.stderr.write(m + '\n') : undefined,
    );
  }, 600_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('observes an erroneous update at the wrong point and a correct one at the right point', () => {
    const outcome = (fixture: string, point: string) =>
      results
        .find((r) => r.fixture === fixture)
        ?.trials.filter((t) => t.point === point && (t.applied || !t.correct))
        .map((t) => t.correct);
    expect(outcome('permission', 'mid')).toContain(false);
    expect(outcome('permission', 'top')).toEqual([true, true]);
    expect(outcome('stackstruct', 'inner')).toContain(false);
    expect(outcome('stackstruct', 'top')?.every(Boolean)).toBe(true);
  });

  it('the combined check denies every erroneous update and allows at least 80 % of the correct ones', () => {
    const s = score(results).combined;
    expect(s.erroneous).toBeGreaterThan(0);
    expect(s.erroneousDenied).toBe(s.erroneous);
    expect(s.correctAllowed / s.correct).toBeGreaterThanOrEqual(0.8);
  });
});
