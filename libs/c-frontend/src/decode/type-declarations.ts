import type { AstNode } from '../ast';
import { findOwnedTag, findValue, normalizeType, rangeOf } from '../ast-helpers';
import { presumedLoc } from '../layout';
import type { MarkedRegion } from '../line-markers';
import type { TypeModel, UnitModel } from '../program-model';
import type { PendingType } from '../type-layouts';
import type { ByteRange, NestedDefinition, RecordInfo } from '../unit-analysis';

/** Drops qualifiers and extra blanks from a type spelling. */
const unqualified = (q: string) =>
  q
    .replace(/\b(const|volatile|restrict|__restrict)\b/g, '')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * Decodes the unit's type declarations (records, enums, typedefs) into pending types, whose
 * layouts the layout probe fills in later, and into the record facts dsu-cc needs to give a
 * struct room for growth (DESIGN.md §4). It also answers which spellings name program types, for
 * the body visitors.
 */
export class TypeDeclarations {
  /** Program types in source order, layouts still to be probed. */
  readonly types: PendingType[] = [];
  /** Struct and union definitions with the ranges the room edit needs. */
  readonly records: RecordInfo[] = [];
  /** Type spellings (`struct S`, typedef names) → type key. */
  private typeKeys = new Set<string>();
  /** FieldDecl id → owning type key. */
  private fieldOwners = new Map<string, string>();
  /** Unnamed records / enums waiting for the typedef that names them (the next declaration, usually). */
  private pendingAnon = new Map<string, AstNode>();
  /** Ranges of the program's top-level declarations, in source order. */
  private topLevel: ByteRange[] = [];

  constructor(
    private readonly unit: UnitModel,
    private readonly buf: Buffer,
    private readonly regions: MarkedRegion[],
  ) {}

  /** Takes every top-level declaration (its range bounds the records' declarations); decodes the type ones. */
  add(d: AstNode): void {
    if (d.range?.begin.offset !== undefined && d.range.end.offset !== undefined)
      this.topLevel.push({
        start: d.range.begin.offset,
        end: d.range.end.offset + (d.range.end.tokLen ?? 0),
      });
    switch (d.kind) {
      case 'RecordDecl':
        if (!d.completeDefinition) return;
        if (d.name) this.addRecord(d, `${d.tagUsed} ${d.name}`, `${d.tagUsed} ${d.name}`);
        else if (d.id) this.pendingAnon.set(d.id, d);
        return;
      case 'EnumDecl':
        if (!d.inner?.length) return;
        if (d.name) this.addEnum(d, `enum ${d.name}`, `enum ${d.name}`);
        else if (d.id) this.pendingAnon.set(d.id, d);
        return;
      case 'TypedefDecl': {
        if (!d.name) return;
        const owned = findOwnedTag(d);
        const anon = owned ? this.pendingAnon.get(owned) : undefined;
        if (anon && owned) {
          this.pendingAnon.delete(owned);
          if (anon.kind === 'EnumDecl') this.addEnum(anon, d.name, d.name, 'typedef');
          else this.addRecord(anon, d.name, d.name, 'typedef');
          return;
        }
        if (this.typeKeys.has(d.name)) return;
        this.typeKeys.add(d.name);
        this.types.push({
          model: this.newType(d.name, 'typedef', {
            target: normalizeType(d.type?.qualType ?? ''),
            updatable: false,
            notUpdatableReason: 'a typedef: its target type decides',
          }),
          spelling: d.name,
          fields: [],
          complete: true,
        });
        return;
      }
    }
  }

  /** The records' whole declarations (`typedef struct {…} T;`, `struct S {…} s;`): needs the whole unit. */
  finish(): void {
    this.pendingAnon.clear();
    for (const r of this.records) {
      const outer = this.topLevel.filter((d) => d.start <= r.open && d.end > r.close);
      r.declStart = Math.min(r.open, ...outer.map((d) => d.start));
      const end = Math.max(r.close + 1, ...outer.map((d) => d.end));
      const semi = this.buf.indexOf(';', end);
      r.declEnd = semi >= 0 && /^\s*$/.test(this.buf.toString('latin1', end, semi)) ? semi + 1 : end;
    }
  }

  /** Whether a spelling (`struct S`, a typedef name) names a program type. */
  has(spelling: string): boolean {
    return this.typeKeys.has(spelling);
  }

  /** The type key owning a field (by FieldDecl id), nested anonymous members included. */
  ownerOfField(id: string): string | undefined {
    return this.fieldOwners.get(id);
  }

  /** `struct rec` / typedef name (qualifiers dropped) when it names a program record type. */
  recordKeyOf(q: string): string | undefined {
    const b = unqualified(q);
    return this.typeKeys.has(b) && this.isRecordKey(b) ? b : undefined;
  }

  /** Whether a type key is a struct, or a typedef of one. */
  isRecordKey(k: string): boolean {
    const t = this.types.find((x) => x.model.key === k);
    if (!t) return false;
    return (
      t.model.kind === 'struct' ||
      (t.model.kind === 'typedef' && t.fields.length > 0) ||
      (t.model.kind === 'typedef' && !!t.model.target && this.isRecordKey(t.model.target))
    );
  }

  /** `struct conn *` → `struct conn` when that is a type of the program (one level of pointer). */
  pointee(q: string | undefined): string | undefined {
    if (!q) return undefined;
    const m = /^(.*?)\s*\*$/.exec(unqualified(q));
    if (!m || m[1].includes('*')) return undefined;
    const base = m[1].trim();
    return this.typeKeys.has(base) ? base : undefined;
  }

  private newType(key: string, kind: TypeModel['kind'], extra: Partial<TypeModel> = {}): TypeModel {
    return {
      key,
      kind,
      fields: [],
      size: 0,
      align: 0,
      layoutHash: '',
      capacity: 0,
      updatable: true,
      unit: this.unit.path,
      ...extra,
    };
  }

  private addRecord(d: AstNode, key: string, spelling: string, kind?: 'typedef') {
    if (this.typeKeys.has(key)) return;
    this.typeKeys.add(key);
    const packed = !!d.inner?.some((c) => c.kind === 'PackedAttr' || c.kind === 'MaxFieldAlignmentAttr');
    const t: PendingType = {
      model: this.newType(
        key,
        kind ?? (d.tagUsed === 'union' ? 'union' : 'struct'),
        packed ? { packed } : {},
      ),
      spelling,
      fields: [],
      complete: true,
    };
    if (kind === 'typedef') t.model.target = `${d.tagUsed} (unnamed)`;
    t.layoutName = d.name
      ? `${d.tagUsed} ${d.name}`
      : `${d.tagUsed} (unnamed at ${presumedLoc(this.buf, this.regions, d.loc?.offset ?? 0)})`;
    if (packed) {
      t.model.updatable = false;
      t.model.notUpdatableReason = 'packed: its C layout must be kept';
    }
    this.collectFields(d, '', key, t);
    this.types.push(t);
    this.classifyRecord(d, t, key, spelling);
  }

  /** The type a typedef name stands for (`pt_t` → `struct pt`), if the unit defines it. */
  typedefTarget(name: string): string | undefined {
    return this.types.find((t) => t.model.key === name && t.model.kind === 'typedef')?.model.target;
  }

  /** Keeps a record of the unit in its C layout (no room), with the reason; false if it has none. */
  keepLayout(key: string, reason: string): boolean {
    const r = this.records.find((x) => x.key === key);
    const t = this.types.find((x) => x.model.key === key);
    if (!r || !t) return false;
    if (r.updatable) Object.assign(r, { updatable: false, notUpdatableReason: reason });
    if (t.model.updatable) Object.assign(t.model, { updatable: false, notUpdatableReason: reason });
    return true;
  }

  /** Decides whether dsu-cc gives the struct room for growth (DESIGN.md §4), with the reason if not. */
  private classifyRecord(d: AstNode, t: PendingType, key: string, spelling: string) {
    const open = d.range?.begin.offset !== undefined ? this.buf.indexOf('{', d.range.begin.offset) : -1;
    const close = d.range?.end.offset ?? -1;
    const info: RecordInfo = {
      key,
      updatable: true,
      open,
      close,
      declStart: open,
      declEnd: close + 1,
      spelling,
    };
    const no = (reason: string) => {
      if (!info.updatable) return;
      info.updatable = false;
      info.notUpdatableReason = reason;
    };
    for (const c of d.inner ?? []) {
      if (c.kind !== 'AnnotateAttr' || !c.range) continue;
      const text = this.buf.toString('latin1', c.range.begin.offset, (c.range.end.offset ?? 0) + 1);
      if (/dsu_no_room/.test(text)) no('opted out in the source (DSU_NO_ROOM)');
      const room = /dsu_room=[^0-9]*(\d+)/.exec(text);
      if (room) info.slop = Number(room[1]);
    }
    if (t.model.packed) no('packed: its C layout must be kept');
    if (d.tagUsed === 'union') no('union: only structs get room for growth');
    if (open < 0 || close <= open || this.buf[close] !== 0x7d)
      no('its definition could not be located in the unit');
    const inner = d.inner ?? [];
    if (inner.some((c) => c.kind === 'FieldDecl' && /\[\]$/.test(c.type?.qualType ?? '')))
      no('has a flexible array member');
    const nested = nestedDefinitions(d, '');
    if (typeof nested === 'string') no(`defines a nested tagged type or enum inside its body (${nested})`);
    else if (nested.length) info.nested = nested;
    if (t.fields.length === 0) no('has no fields');
    if (!info.updatable) {
      t.model.updatable = false;
      t.model.notUpdatableReason = info.notUpdatableReason;
    }
    if (info.slop !== undefined) t.model.slop = info.slop;
    this.records.push(info);
  }

  private collectFields(rec: AstNode, prefix: string, owner: string, t: PendingType) {
    const inner = rec.inner ?? [];
    for (let i = 0; i < inner.length; i++) {
      const f = inner[i];
      if (f.kind !== 'FieldDecl') continue;
      if (f.id) this.fieldOwners.set(f.id, owner);
      const nested =
        i > 0 && inner[i - 1].kind === 'RecordDecl' && !inner[i - 1].name ? inner[i - 1] : undefined;
      const type = normalizeType(f.type?.qualType ?? '');
      const isAnonMember = !f.name || f.isImplicit;
      if (!isAnonMember) {
        const width = f.isBitfield ? Number(findValue(f) ?? 0) : undefined;
        t.fields.push({
          model: {
            name: prefix + f.name,
            type,
            offsetBits: 0,
            sizeBits: width ?? 0,
            ...(f.isBitfield ? { bitfield: true } : {}),
          },
          path: prefix + f.name,
        });
      }
      if (nested && /\((unnamed|anonymous)/.test(f.type?.qualType ?? '')) {
        this.collectFields(nested, isAnonMember ? prefix : `${prefix}${f.name}.`, owner, t);
        if (nested.inner)
          for (const g of nested.inner) if (g.kind === 'FieldDecl' && g.id) this.fieldOwners.set(g.id, owner);
      }
    }
  }

  private addEnum(d: AstNode, key: string, spelling: string, kind?: 'typedef') {
    if (this.typeKeys.has(key)) return;
    this.typeKeys.add(key);
    const t: PendingType = {
      model: this.newType(key, kind ?? 'enum', { updatable: false, notUpdatableReason: 'not a struct' }),
      spelling,
      fields: [],
      complete: true,
    };
    if (kind === 'typedef') t.model.target = 'enum (unnamed)';
    for (const c of d.inner ?? []) {
      if (c.kind === 'EnumConstantDecl' && c.name) {
        t.fields.push({
          model: { name: c.name, type: spelling, offsetBits: 0, sizeBits: 0, value: 0 },
          path: c.name,
        });
      }
    }
    this.types.push(t);
  }
}

/**
 * The tag and enum definitions inside a record's body (`enum { IDLE, BUSY } state;`, `struct in
 * { int a; } in;`, also inside anonymous member structs such as BSD's `LIST_ENTRY(conn)`), each
 * with the member of the first declarator that has its type. dsu-cc's copy of the fields (the
 * room's shape) defines them once; the struct itself then names them through that member. A
 * definition no member refers to plainly (bit-field, function pointer, no declarator) is returned
 * as the reason the record keeps its C layout. Forward declarations (`struct later *p;`) are not
 * definitions and need nothing.
 */
function nestedDefinitions(rec: AstNode, path: string): NestedDefinition[] | string {
  const out: NestedDefinition[] = [];
  const inner = rec.inner ?? [];
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c.kind !== 'RecordDecl' && c.kind !== 'EnumDecl') continue;
    if (c.kind === 'RecordDecl' && !c.completeDefinition) continue;
    const field = inner[i + 1]?.kind === 'FieldDecl' ? inner[i + 1] : undefined;
    const what = c.name ? `${c.kind === 'EnumDecl' ? 'enum' : c.tagUsed} ${c.name}` : `an unnamed ${c.kind === 'EnumDecl' ? 'enum' : c.tagUsed}`;
    if (!field) return `${what} declares no member`;
    const anonMember = !field.name || field.isImplicit;
    if (c.kind === 'RecordDecl' && !c.name) {
      // An unnamed member struct is copied as it is; what it defines inside is named through it.
      const deeper = nestedDefinitions(c, anonMember ? path : `${path}${field.name}.`);
      if (typeof deeper === 'string') return deeper;
      out.push(...deeper);
      continue;
    }
    if (anonMember || field.isBitfield) return `${what} is the type of a bit-field`;
    const raw = field.type?.qualType ?? '';
    const base = c.name ? `${c.kind === 'EnumDecl' ? 'enum' : c.tagUsed} ${c.name}` : /^[^)]*\)/.exec(raw)?.[0] ?? '';
    const suffix = raw.startsWith(base) ? raw.slice(base.length) : undefined;
    const m = suffix === undefined ? null : /^\s*((?:\*\s*)*)((?:\[\d*\])*)\s*$/.exec(suffix);
    if (!m) return `member ${field.name} of ${what} has a declarator dsu-cc cannot name (${normalizeType(raw)})`;
    const range = rangeOf(c);
    out.push({
      start: range.start,
      end: range.end,
      member: `${path}${field.name}`,
      pointers: (m[1].match(/\*/g) ?? []).length,
      dimensions: (m[2].match(/\[/g) ?? []).length,
    });
  }
  return out;
}
