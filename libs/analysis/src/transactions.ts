import type { FunctionModel } from '@dsu/c-frontend';

/** A transaction's extent inside one function body (flow offsets, inclusive). */
export interface TxnRegion {
  label: string;
  start: number;
  end: number;
}

/**
 * The transactions of a function: its whole body when it is configured as one (by key or name),
 * and every `DSU_TXN_BEGIN(L)` up to the last `DSU_TXN_END(L)` before the next begin of `L` (an
 * early return ends it too, so the region spans to the last end).
 */
export function transactionRegions(fn: FunctionModel, configured: readonly string[]): TxnRegion[] {
  const regions: TxnRegion[] = [];
  if (configured.includes(fn.key) || configured.includes(fn.name))
    regions.push({ label: fn.name, start: -1, end: Number.MAX_SAFE_INTEGER });
  const flow = fn.flow ?? [];
  flow.forEach((s, i) => {
    if (s.kind !== 'txn-begin') return;
    let end = -1;
    for (const t of flow.slice(i + 1)) {
      if (t.kind === 'txn-begin' && t.name === s.name) break;
      if (t.kind === 'txn-end' && t.name === s.name) end = t.at;
    }
    // no end in this function: the transaction lasts to the end of the body
    regions.push({ label: s.name, start: s.at, end: end >= 0 ? end : Number.MAX_SAFE_INTEGER });
  });
  return regions;
}
