import type { FlowStep, FunctionModel, ProgramModel } from '@dsu/c-frontend';

/** A call of a function: the caller and where in it (flow offset and line). */
export interface CallEdge {
  caller: string;
  at: number;
  line: number;
}

const withoutPointer = (t: string) =>
  t
    .replace(/\(\s*\*\s*\)/, '')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * The running program's call graph with positions. Direct calls resolve to the callee's key; an
 * indirect call may reach every function whose address is taken and whose signature matches the
 * pointer type (every address-taken function when none matches: a cast may hide the type).
 */
export class CallGraph {
  private readonly callers = new Map<string, CallEdge[]>();
  private readonly addressTaken: FunctionModel[];
  private readonly closures = new Map<string, Set<string>>();

  constructor(readonly model: ProgramModel) {
    this.addressTaken = Object.values(model.functions).filter((f) => f.addressTaken);
    for (const f of Object.values(model.functions))
      for (const s of f.flow ?? [])
        for (const callee of this.callees(s)) {
          const list = this.callers.get(callee) ?? [];
          list.push({ caller: f.key, at: s.at, line: s.line });
          this.callers.set(callee, list);
        }
  }

  /** Program functions a call step may enter (none for other steps and library calls). */
  callees(s: FlowStep): string[] {
    if (s.kind === 'call') return this.model.functions[s.name] ? [s.name] : [];
    if (s.kind !== 'icall') return [];
    const want = withoutPointer(s.name);
    const match = this.addressTaken.filter((f) => withoutPointer(f.signature) === want);
    return (match.length ? match : this.addressTaken).map((f) => f.key);
  }

  /** Where `fn` is called from. */
  callersOf(fn: string): CallEdge[] {
    return this.callers.get(fn) ?? [];
  }

  /** `fn` and every function it may call, transitively. */
  reach(fn: string): Set<string> {
    const known = this.closures.get(fn);
    if (known) return known;
    const seen = new Set<string>([fn]);
    const todo = [fn];
    while (todo.length) {
      const f = this.model.functions[todo.pop() as string];
      for (const s of f?.flow ?? [])
        for (const c of this.callees(s))
          if (!seen.has(c)) {
            seen.add(c);
            todo.push(c);
          }
    }
    this.closures.set(fn, seen);
    return seen;
  }
}
