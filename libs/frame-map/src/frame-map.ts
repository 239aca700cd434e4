/**
 * Stack-frame maps (docs/DESIGN.md §7, libs/runtime/ABI.md §11, after UpStare): for a function
 * that may be active on a stack when a patch is applied, where each frame of the running version
 * resumes in the new version (site → site) and where each local of the new frame gets its value.
 * Shared by the patch generator (which compiles the map into the patch's descriptor), the safety
 * checker (which prints it and lets it lift activeness denials) and the manifest.
 */
import { mapLocals } from './local-map';
import { mapSites } from './site-map';

/** How a frame record stores a local (dsu.h DSU_LOCAL_*). */
export type FrameLocalKind = 'int' | 'uint' | 'ptr' | 'bytes';

/** One function's frame as one build registered it (dsu-cc's unit plan, `frames.functions[]`). */
export interface FrameFacts {
  key: string;
  /**
   * Site names in source order: `point:<name>`, `call:<callee>#<k>`, `wait:<call>#<k>` each
   * followed by its `wait:<call>#<k>:again`.
   */
  sites: string[];
  /** Every local a capture can save (parameters first), in declaration order. */
  locals: {
    name: string;
    type: string;
    kind: FrameLocalKind;
    initializer?: 'simple' | 'complex';
    /** A parameter: the resumed call passes it again. */
    param?: boolean;
    /** The line where its address is stored somewhere that may outlive the frame. */
    escapesAt?: number;
  }[];
}

/** patch.yaml `frames.<function>`: what the user says where the generated map cannot. */
export interface FrameOverride {
  /** Old site → new site (`"call:handle#0": "call:handle_request#0"`). */
  resume?: Record<string, string>;
  /** New local → its old local (`from`, a renamed local) or a C expression over the new frame's earlier locals (`init`). */
  locals?: Record<string, { from?: string; init?: string }>;
}

export interface SiteMapping {
  from: string;
  to: string;
  /** same: the same name; moved: matched by call-site correspondence; override: from patch.yaml. */
  how: 'same' | 'moved' | 'override';
}

/**
 * Where one local of the new frame gets its value. old-local: the old local of the same name and
 * type; renamed: the old local patch.yaml names (`note` when its type converts); conversion: the
 * same-named old local of another integer or pointer type; initializer: patch.yaml's `expression`,
 * else the local's own re-runnable initializer; zero: nothing to take it from.
 */
export type LocalMapping =
  | { local: string; from: 'old-local'; oldLocal: string }
  | { local: string; from: 'renamed'; oldLocal: string; note?: string }
  | { local: string; from: 'conversion'; oldLocal: string; note: string }
  | {
      local: string;
      from: 'initializer';
      expression?: string;
      /** The old frame has a local of this name: the runtime must be told not to carry it. */
      overridesOld?: true;
    }
  | { local: string; from: 'zero'; note: string }
  /** A new parameter: the caller's call, made again when the frame resumes, passes it. */
  | { local: string; from: 'argument' };

/**
 * The map of one function: when its result has no problems, every old site (`:again` ones
 * included) and every new local is accounted for; otherwise the ones with a problem are missing.
 */
export interface FunctionFrameMap {
  key: string;
  sites: SiteMapping[];
  locals: LocalMapping[];
}

export interface FrameMapResult {
  map: FunctionFrameMap;
  /** Why the map cannot be made, each naming exactly what to write in patch.yaml; empty = usable. */
  problems: string[];
}

/**
 * The frame map of one function from its facts in the running build (`old`) and the patched build
 * (`next`), with patch.yaml's `frames.<key>` (`override`). `opts.changedTypes`: the types whose
 * layout the patch changes (as type strings, e.g. `struct conn`); a by-value local of such a type
 * cannot be carried. Pure; never throws on bad overrides: they come back as problems, each quoting
 * the patch.yaml to write. The map is complete only when `problems` is empty.
 */
export function mapFrame(
  old: FrameFacts,
  next: FrameFacts,
  override: FrameOverride = {},
  opts: { changedTypes?: ReadonlySet<string> } = {},
): FrameMapResult {
  const fn = next.key;
  const sites = mapSites(fn, old.sites, next.sites, override.resume);
  const locals = mapLocals(fn, old.locals, next.locals, override.locals, opts.changedTypes);
  return {
    map: { key: fn, sites: sites.sites, locals: locals.locals },
    problems: [...sites.problems, ...locals.problems],
  };
}

/**
 * Why frames of `old` cannot be rebuilt at all, or undefined: a local whose address is stored
 * where it may outlive the calls it is passed to (a global, a struct, a returned pointer) would be
 * left pointing into the dead frame, since a rebuilt frame gives its locals new storage. The
 * update then waits until the function is not active (the runtime refuses it meanwhile).
 */
export function whyNotRebuildable(old: FrameFacts): string | undefined {
  const held = old.locals.find((l) => l.escapesAt !== undefined);
  if (!held) return undefined;
  return (
    `the address of its local '${held.name}' is kept beyond the call it is passed to (line ${held.escapesAt}), ` +
    `and a rebuilt frame would move '${held.name}'; make it static (or global) so it keeps its storage`
  );
}
