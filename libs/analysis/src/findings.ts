/** One result of a safety analysis (DESIGN.md §8). */
export interface Finding {
  rule: string;
  severity: 'error' | 'warning' | 'info';
  message: string;
  /** Function, type or global the finding is about. */
  location: string;
  /** Update points at which the finding applies (empty: all). */
  updatePoints: string[];
}
