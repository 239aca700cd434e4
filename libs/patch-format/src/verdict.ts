/**
 * The checker's verdict on a patch (DESIGN.md §8): what `dsu check --json` prints, what the
 * checker service publishes and signs, and what the gateway stores. Declared once, here.
 */

/** Rule ids of the safety analysis, in the order a report lists them. */
export const SAFETY_RULES = [
  'bundle-integrity',
  'empty-patch',
  'patch-id',
  'activeness',
  'con-freeness',
  'version-consistency',
  'when-condition',
  'capacity',
  'untracked-instances',
  'removed-referenced',
  'signature',
  'initializer',
  'startup-global',
] as const;

export type SafetyRule = (typeof SAFETY_RULES)[number];

/** One result of a check: an `error` rejects the patch, a `warning` or `info` informs the reviewer. */
export interface Finding {
  rule: SafetyRule | string;
  severity: 'error' | 'warning' | 'info';
  message: string;
  /** What the finding is about: a function, type or global, with `file:line` where known. */
  location?: string;
  /** The update points the finding denies (empty or absent: it is not about a point). */
  updatePoints?: string[];
}

/** An update point the analysis denies, with the rules that deny it. */
export interface DeniedPoint {
  name: string;
  rules: string[];
}

export interface SafetyVerdict {
  /** `approved`: no error finding and at least one update point allowed. */
  verdict: 'approved' | 'rejected';
  findings: Finding[];
  updatePoints: { allowed: string[]; denied: DeniedPoint[] };
}

/** JSON Schema of a finding (events and stored verdicts validate with it). */
export const findingSchema = {
  type: 'object',
  required: ['rule', 'severity', 'message'],
  properties: {
    rule: { type: 'string' },
    severity: { enum: ['error', 'warning', 'info'] },
    message: { type: 'string' },
    location: { type: 'string' },
    updatePoints: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** JSON Schema of the allowed / denied update points of a verdict. */
export const updatePointsSchema = {
  type: 'object',
  required: ['allowed', 'denied'],
  properties: {
    allowed: { type: 'array', items: { type: 'string' } },
    denied: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'rules'],
        properties: { name: { type: 'string' }, rules: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
} as const;
