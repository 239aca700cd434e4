import { createHash } from 'node:crypto';
import { parseRecordLayouts } from './layout';
import type { FieldModel, TypeModel } from './program-model';
import type { RecordInfo } from './unit-analysis';

/** A program type under construction: its model plus what the layout probe needs. */
export interface PendingType {
  model: TypeModel;
  /** C spelling of the type for sizeof (`struct S`, or the typedef name). */
  spelling: string;
  /** Fields with their designator path for offsetof (`anon.q`). */
  fields: { model: FieldModel; path: string }[];
  /** Name clang's record-layout dump uses for the record (bit-fields). */
  layoutName?: string;
  complete: boolean;
}

/**
 * Probe expressions for sizes, alignments, offsets and enumerator values of every type, each
 * with the slot its answer fills in (answers arrive in order). `withRoom`: ask the room's offset
 * too (size = bytes the fields use), for every updatable record (`true`) or the keys given.
 */
export function layoutQueries(
  types: readonly PendingType[],
  records: readonly RecordInfo[],
  withRoom: boolean | ReadonlySet<string>,
): { exprs: string[]; slots: ((v: number | undefined) => void)[] } {
  const exprs: string[] = [];
  const slots: ((v: number | undefined) => void)[] = [];
  const ask = (e: string, set: (v: number | undefined) => void) => {
    exprs.push(e);
    slots.push(set);
  };
  const roomy: ReadonlySet<string> =
    typeof withRoom === 'boolean' ? new Set(records.filter((r) => r.updatable).map((r) => r.key)) : withRoom;
  // Expressions that cannot compile cost a second probe run (the first fails and is retried
  // without them): leave out types this unit only declares, and flexible array members.
  const defined = new Set(
    types
      .filter((t) => t.model.kind !== 'typedef' || /\(unnamed\)$/.test(t.model.target ?? ''))
      .map((t) => t.model.key),
  );
  const typedefs = new Map(
    types.filter((t) => t.model.kind === 'typedef').map((t) => [t.model.key, t.model.target ?? '']),
  );
  const incomplete = (type: string, depth = 0): boolean => {
    if (/\[\]$/.test(type)) return true;
    if (/^(struct|union) /.test(type)) return !defined.has(type);
    const next = typedefs.get(type);
    return next !== undefined && depth < 16 && !defined.has(type) && incomplete(next, depth + 1);
  };
  for (const t of types) {
    const T = t.spelling;
    if (incomplete(t.model.key)) {
      t.complete = false;
      continue;
    }
    ask(`sizeof(${T})`, (v) => {
      if (v === undefined) t.complete = false;
      t.model.size = v ?? 0;
      t.model.capacity = v ?? 0;
    });
    ask(`__alignof__(${T})`, (v) => (t.model.align = v ?? 0));
    if (withRoom !== false && roomy.has(t.model.key)) {
      // after sizeof (answers arrive in order): size = bytes the fields use, capacity = sizeof
      ask(`__builtin_offsetof(${T}, __dsu_room)`, (v) => {
        if (v !== undefined) t.model.size = v;
      });
    }
    for (const f of t.fields) {
      if (f.model.value !== undefined) ask(`(long long)(${f.path})`, (v) => (f.model.value = v ?? 0));
      else if (!f.model.bitfield) {
        ask(`__builtin_offsetof(${T}, ${f.path})`, (v) => (f.model.offsetBits = (v ?? -1) * 8));
        if (!/\[\]$/.test(f.model.type))
          ask(`sizeof(((${T} *)0)->${f.path})`, (v) => (f.model.sizeBits = (v ?? 0) * 8));
      }
    }
  }
  return { exprs, slots };
}

/** Bit offsets of bit-fields from a record layout dump (-1 when the dump does not have them). */
export function applyBitfields(withBits: readonly PendingType[], dump: string): void {
  const layouts = parseRecordLayouts(dump);
  for (const t of withBits) {
    const rec = t.layoutName ? layouts.get(t.layoutName) : undefined;
    for (const f of t.fields) {
      if (!f.model.bitfield) continue;
      const l = rec?.get(f.path);
      f.model.offsetBits = l ? l.offsetBits : -1;
    }
  }
}

/** Moves the probed fields into the models and computes their layout hashes. */
export function finishLayouts(types: readonly PendingType[]): void {
  for (const t of types) {
    t.model.fields = t.fields.map((f) => f.model);
    if (!t.complete) t.model.incomplete = true;
    t.model.layoutHash = layoutHash(t.model);
  }
}

/** sha256 over what decides a type's layout: kind, size, alignment, fields (name, type, offset, size). */
export function layoutHash(
  t: Pick<TypeModel, 'kind' | 'size' | 'align' | 'fields'> & { target?: string },
): string {
  const body = JSON.stringify([
    t.kind,
    t.size,
    t.align,
    t.target ?? '',
    t.fields.map((f) => [f.name, f.type, f.offsetBits, f.sizeBits, f.value ?? null]),
  ]);
  return createHash('sha256').update(body).digest('hex');
}
