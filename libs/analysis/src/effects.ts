import type { FlowStep } from '@dsu/c-frontend';
import type { CallGraph } from './call-graph';
import type { PatchScope } from './patch-scope';

/** Where an effect comes from: the function and line of the step that causes it. */
export interface Origin {
  function: string;
  line: number;
}

/**
 * An effect (Neamtiu et al., contextual effects): the functions, types and globals some code
 * uses, as atoms `fn:key`, `type:name`, `global:key`, each with the first step that uses it.
 */
export class Effect {
  readonly atoms = new Map<string, Origin>();

  constructor(private readonly graph: CallGraph) {}

  private put(atom: string, o: Origin) {
    if (!this.atoms.has(atom)) this.atoms.set(atom, o);
  }

  /** Adds what a step uses; a call uses its callees and everything they use, transitively. */
  addStep(s: FlowStep, fn: string): void {
    const o = { function: fn, line: s.line };
    if (s.kind === 'type') this.put(`type:${s.name}`, o);
    else if (s.kind === 'read' || s.kind === 'write') this.put(`global:${s.name}`, o);
    else if (s.kind === 'call' || s.kind === 'icall')
      for (const c of this.graph.callees(s)) for (const g of this.graph.reach(c)) this.addFunction(g, o);
  }

  /** Adds a function's own code with what its body names concretely. */
  addFunction(key: string, o: Origin): void {
    this.put(`fn:${key}`, o);
    const f = this.graph.model.functions[key];
    if (!f) return;
    for (const t of f.typesUsed) this.put(`type:${t}`, o);
    for (const g of [...f.globalsRead, ...f.globalsWritten]) this.put(`global:${g}`, o);
  }

  /** Adds a function's own code only (a frame: what its body names is in its steps). */
  addCode(key: string, o: Origin): void {
    this.put(`fn:${key}`, o);
  }

  /** The atoms the patch changes, with their origins. */
  changedBy(scope: PatchScope): [string, Origin][] {
    return [...this.atoms].filter(([a]) => {
      const [kind, name] = [a.slice(0, a.indexOf(':')), a.slice(a.indexOf(':') + 1)];
      if (kind === 'fn') return scope.replaced.has(name);
      if (kind === 'type') return scope.changedTypes.has(name);
      return scope.changedGlobals.has(name);
    });
  }
}

/** `fn:serve` → `serve()`, `type:struct conn` → `struct conn`, `global:count` → `count`. */
export function describeAtom(atom: string): string {
  const i = atom.indexOf(':');
  const kind = atom.slice(0, i);
  const name = atom.slice(i + 1);
  return kind === 'fn' ? `${name}()` : kind === 'type' ? name : `global '${name}'`;
}
