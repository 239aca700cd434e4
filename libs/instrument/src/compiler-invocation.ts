import { takesValue } from '@dsu/c-frontend';

/**
 * What a compiler command line asks for, so dsu-cc can instrument compile steps, add the
 * runtime to link steps, and pass everything else through untouched.
 */
export type InvocationKind = 'compile' | 'link' | 'compile-and-link' | 'passthrough';

export interface CompilerInvocation {
  kind: InvocationKind;
  /** C sources to instrument. */
  sources: string[];
  /** `-o` value, when given. */
  output?: string;
}

/** Options that make the driver stop before producing an object file or an executable. */
const NO_OUTPUT_STAGES = new Set(['-E', '-S', '-M', '-MM', '-fsyntax-only', '--version', '-v', '-dumpversion', '-dumpmachine', '--help', '-print-search-dirs']);

export function classifyInvocation(args: readonly string[]): CompilerInvocation {
  const sources: string[] = [];
  let output: string | undefined;
  let compileOnly = false;
  let hasInputs = false;
  let language: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (NO_OUTPUT_STAGES.has(a) || a.startsWith('-print-')) return { kind: 'passthrough', sources: [] };
    if (a === '-c') compileOnly = true;
    else if (a === '-o') output = args[++i];
    else if (a === '-x') language = args[++i];
    else if (takesValue(a)) i++; // its value is not an input file
    else if (!a.startsWith('-') || a === '-') {
      hasInputs = true;
      const isC = language ? language === 'c' : /\.c$/.test(a);
      if (isC && a !== '-') sources.push(a);
    }
  }
  if (!hasInputs) return { kind: 'passthrough', sources: [] };
  if (compileOnly) return { kind: sources.length > 0 ? 'compile' : 'passthrough', sources, output };
  return { kind: sources.length > 0 ? 'compile-and-link' : 'link', sources, output };
}
