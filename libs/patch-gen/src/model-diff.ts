import type { FunctionModel, ProgramModel } from '@dsu/c-frontend';

export interface FunctionDiff {
  /** Same key, same signature, different normalized body. */
  body: string[];
  /** Same key, different signature. */
  signature: string[];
  added: string[];
  removed: string[];
}

/** Compares the functions of two program versions by key, signature and normalized body hash. */
export function diffFunctions(from: ProgramModel, to: ProgramModel): FunctionDiff {
  const diff: FunctionDiff = { body: [], signature: [], added: [], removed: [] };
  for (const [key, next] of Object.entries(to.functions)) {
    const prev: FunctionModel | undefined = from.functions[key];
    if (!prev) diff.added.push(key);
    else if (prev.signature !== next.signature) diff.signature.push(key);
    else if (prev.bodyHash !== next.bodyHash) diff.body.push(key);
  }
  for (const key of Object.keys(from.functions)) if (!(key in to.functions)) diff.removed.push(key);
  for (const list of Object.values(diff)) list.sort();
  return diff;
}
