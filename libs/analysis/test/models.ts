import type { FunctionModel, ProgramModel } from '@dsu/c-frontend';

/**
 * A function model for the rules' specs: `calls` become direct calls in its flow, in order; `main`
 * also has the update points 'top' (before the calls) and 'late' (after them).
 */
export const fn = (key: string, calls: string[] = [], extra: Partial<FunctionModel> = {}): FunctionModel => ({
  key,
  name: key,
  unit: 'a.c',
  isStatic: false,
  signature: 'int (int)',
  bodyHash: key,
  calls,
  indirectCalls: [],
  addressTaken: false,
  variadic: false,
  typesUsed: [],
  globalsRead: [],
  globalsWritten: [],
  updatePoints: [],
  transactions: [],
  loops: [],
  flow: [
    ...calls.map((c, i) => ({ kind: 'call' as const, name: c, at: 10 + i, line: 2 + i })),
    ...(key === 'main'
      ? [
          { kind: 'point' as const, name: 'top', at: 1, line: 1 },
          { kind: 'point' as const, name: 'late', at: 50, line: 9 },
        ]
      : []),
  ],
  ...extra,
});

/** A program model of these functions. */
export const model = (...fns: FunctionModel[]): ProgramModel => ({
  format: 1,
  program: 'p',
  buildId: 'b',
  units: [],
  globals: {},
  types: {},
  functions: Object.fromEntries(fns.map((f) => [f.key, f])),
});
