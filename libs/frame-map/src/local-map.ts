/**
 * Local half of a frame map: where each local of the new frame gets its value. The runtime loads
 * locals by name and converts only integers (checked) and pointers (ABI.md §11); anything else
 * whose type changes needs a value from patch.yaml.
 */
import type { FrameFacts, FrameOverride, LocalMapping } from './frame-map';
import { initSnippet, nameList } from './patch-yaml';

type Local = FrameFacts['locals'][number];
type LocalOverride = NonNullable<FrameOverride['locals']>[string];

const isInteger = (l: Local): boolean => l.kind === 'int' || l.kind === 'uint';

/** Whether `type` names one of `changed` as a whole word (`struct conn[4]` names `struct conn`, `struct connx` does not). */
function namesChangedType(type: string, changed: ReadonlySet<string>): boolean {
  for (const name of changed) {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    if (new RegExp(`(^|[^A-Za-z0-9_])${escaped}($|[^A-Za-z0-9_])`).test(type)) return true;
  }
  return false;
}

/** What the runtime's load does to `o` for `n`: '' a plain copy, a note when it converts, undefined when it cannot. */
function conversionNote(o: Local, n: Local): string | undefined {
  if (o.type === n.type && o.kind === n.kind) return '';
  if (isInteger(o) && isInteger(n))
    return `converted from '${o.type}', checked: a value that does not fit runs the initializer`;
  if (o.kind === 'ptr' && n.kind === 'ptr') return `pointer carried (was '${o.type}')`;
  return undefined;
}

/**
 * The new local `n` takes the old local `o` (same name, or renamed by patch.yaml), or the problem
 * why it cannot. A string is a problem.
 */
function carry(
  fn: string,
  n: Local,
  o: Local,
  renamed: boolean,
  changed: ReadonlySet<string>,
): LocalMapping | string {
  const what = renamed ? `local '${n.name}' (from old '${o.name}')` : `local '${n.name}'`;
  // The runtime copies values as they are: a struct whose layout the patch changes would be
  // garbage, an enum whose values it renumbers would mean another value (pointers are fine: the
  // instances they point to are transformed in place).
  if (n.kind !== 'ptr' && (namesChangedType(n.type, changed) || namesChangedType(o.type, changed))) {
    return (
      `function '${fn}': ${what} has type '${n.type}', whose layout or values the patch changes ` +
      `(a frame's locals are not transformed); give its value ${initSnippet(fn, n.name)}`
    );
  }
  const note = conversionNote(o, n);
  if (note === undefined) {
    return `function '${fn}': ${what} changes type from '${o.type}' to '${n.type}'; give its value ${initSnippet(fn, n.name)}`;
  }
  if (renamed) return { local: n.name, from: 'renamed', oldLocal: o.name, ...(note ? { note } : {}) };
  return note
    ? { local: n.name, from: 'conversion', oldLocal: o.name, note }
    : { local: n.name, from: 'old-local', oldLocal: o.name };
}

/** A new local's mapping when patch.yaml says nothing about it: by name, else its own initializer, else zero. */
function byDefault(
  fn: string,
  n: Local,
  old: Local | undefined,
  changed: ReadonlySet<string>,
): LocalMapping | string {
  if (old) return carry(fn, n, old, false, changed);
  // The generated restore block re-evaluates a side-effect-free initializer itself.
  if (n.initializer === 'simple') return { local: n.name, from: 'initializer' };
  if (n.param) return { local: n.name, from: 'argument' };
  return {
    local: n.name,
    from: 'zero',
    note: 'starts at zero: no old local, no initializer that can run again; give one in patch.yaml if the code reads it before assigning it',
  };
}

/** A new local patch.yaml speaks for: `from` (a renamed old local) or `init` (a C expression). */
function byOverride(
  fn: string,
  n: Local,
  over: LocalOverride,
  oldLocals: readonly Local[],
  changed: ReadonlySet<string>,
): LocalMapping | string {
  const where = `function '${fn}': patch.yaml frames.${fn}.locals.${n.name}`;
  if (over.from !== undefined && over.init !== undefined)
    return `${where} gives both from and init; give one`;
  if (over.init !== undefined) {
    if (over.init.trim() === '') return `${where} has an empty init; give a C expression`;
    const overridesOld = oldLocals.some((l) => l.name === n.name);
    return {
      local: n.name,
      from: 'initializer',
      expression: over.init,
      ...(overridesOld ? { overridesOld: true as const } : {}),
    };
  }
  const old = oldLocals.find((l) => l.name === over.from);
  if (!old) {
    return `${where} takes '${over.from}', which the running version does not have (its locals: ${nameList(oldLocals.map((l) => l.name))})`;
  }
  return carry(fn, n, old, old.name !== n.name, changed);
}

/**
 * One LocalMapping per new local (in `newLocals` order) and the problems of those that have none.
 * Old locals no new local takes are dropped. Pure.
 */
export function mapLocals(
  fn: string,
  oldLocals: readonly Local[],
  newLocals: readonly Local[],
  overrides: Readonly<Record<string, LocalOverride>> = {},
  changedTypes: ReadonlySet<string> = new Set(),
): { locals: LocalMapping[]; problems: string[] } {
  const problems: string[] = [];
  const names = newLocals.map((l) => l.name);
  for (const name of Object.keys(overrides).filter((k) => !names.includes(k))) {
    problems.push(
      `function '${fn}': patch.yaml frames.${fn}.locals names '${name}', which the new version does not have (its locals: ${nameList(names)})`,
    );
  }
  const locals: LocalMapping[] = [];
  for (const n of newLocals) {
    const over = Object.hasOwn(overrides, n.name) ? overrides[n.name] : undefined;
    const old = oldLocals.find((l) => l.name === n.name);
    const m = over ? byOverride(fn, n, over, oldLocals, changedTypes) : byDefault(fn, n, old, changedTypes);
    if (typeof m === 'string') problems.push(m);
    else locals.push(m);
  }
  return { locals, problems };
}
