/**
 * The program model (DESIGN.md §3): what the C front end learns about one program version.
 * Written next to every executable dsu-cc links (`<exe>.dsu.json`) and stored as an artifact;
 * patch-gen diffs two of them, analysis reads them.
 */
export const PROGRAM_MODEL_FORMAT = 1;

export interface ProgramModel {
  format: typeof PROGRAM_MODEL_FORMAT;
  program: string;
  buildId: string;
  units: UnitModel[];
  /** Keyed `unit::name` for static functions, `name` otherwise. */
  functions: Record<string, FunctionModel>;
  /** Keyed like functions; function-local statics as `unit::function::name`. */
  globals: Record<string, GlobalModel>;
  /** Keyed `struct conn`, `union u`, `enum e`, or the typedef name. */
  types: Record<string, TypeModel>;
}

export interface UnitModel {
  /** Source path relative to the build directory. */
  path: string;
  /** Short id used to give statics unique exported names. */
  id: string;
  /** The exact compiler flags of the real compile. */
  flags: string[];
}

export interface FunctionModel {
  key: string;
  name: string;
  unit: string;
  isStatic: boolean;
  signature: string;
  /** sha256 of the body's tokens: insensitive to whitespace, comments and line numbers. */
  bodyHash: string;
  calls: string[];
  indirectCalls: { pointerType: string }[];
  addressTaken: boolean;
  variadic: boolean;
  typesUsed: string[];
  globalsRead: string[];
  globalsWritten: string[];
  updatePoints: string[];
  transactions: string[];
}

export interface GlobalModel {
  key: string;
  name: string;
  unit: string;
  type: string;
  linkage: 'external' | 'internal' | 'function-static';
}

export interface FieldModel {
  name: string;
  type: string;
  offsetBits: number;
  sizeBits: number;
}

export interface TypeModel {
  key: string;
  kind: 'struct' | 'union' | 'enum' | 'typedef';
  fields: FieldModel[];
  size: number;
  align: number;
  layoutHash: string;
  capacity: number;
  updatable: boolean;
  notUpdatableReason?: string;
}

/** Key of a function or global: statics are qualified by their unit so same-named ones stay apart. */
export function symbolKey(name: string, unit: string, isStatic: boolean): string {
  return isStatic ? `${unit}::${name}` : name;
}
