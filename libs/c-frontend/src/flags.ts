/**
 * Compile flags of the real compile, split into what the preprocessing step needs and what the
 * semantic steps (AST dump, layout probe) on the already preprocessed `.i` need.
 */

/** Preprocessor-only options: meaningless (or harmful, like `-include`) when compiling a `.i`. */
const PREPROCESSOR_WITH_VALUE = new Set([
  '-I',
  '-D',
  '-U',
  '-include',
  '-imacros',
  '-isystem',
  '-iquote',
  '-idirafter',
  '-iprefix',
  '-iwithprefix',
  '-MF',
  '-MT',
  '-MQ',
  '-o',
  '-x',
]);
/** Options whose value is the next argument (when not glued: `-o out.o` vs `-oout.o`). */
const TAKES_VALUE = new Set([
  ...PREPROCESSOR_WITH_VALUE,
  '-isysroot',
  '--sysroot',
  '-target',
  '-arch',
  '-Xclang',
  '-Xpreprocessor',
  '-Xassembler',
  '-Xlinker',
  '-L',
  '-l',
  '-T',
  '-u',
  '-z',
  '-aux-info',
]);

/** Dropped everywhere: output selection, dependency generation, link-only options. */
const DROP_ALONE = new Set([
  '-c',
  '-S',
  '-E',
  '-M',
  '-MM',
  '-MD',
  '-MMD',
  '-MP',
  '-MG',
  '-fsyntax-only',
  '-save-temps',
  '-pipe',
  '-v',
  '-###',
  '-shared',
  '-static',
  '-rdynamic',
  '-pie',
  '-no-pie',
  '-s',
]);
const DROP_WITH_VALUE = new Set([
  '-o',
  '-MF',
  '-MT',
  '-MQ',
  '-Xassembler',
  '-Xlinker',
  '-L',
  '-l',
  '-T',
  '-u',
  '-z',
  '-aux-info',
]);

export interface SplitFlags {
  /** For `clang -E`: everything that can change preprocessing and semantics. */
  preprocess: string[];
  /** For steps that read the `.i` (`-x cpp-output`): language standard, target, -f/-m options. */
  semantic: string[];
  /** Source files named in the flags (ignored; the unit path is given separately). */
  inputs: string[];
}

export function splitFlags(flags: readonly string[]): SplitFlags {
  const preprocess: string[] = [];
  const semantic: string[] = [];
  const inputs: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    if (DROP_ALONE.has(f) || f.startsWith('-Wl,') || f.startsWith('-Wa,') || f.startsWith('-save-temps='))
      continue;
    if (TAKES_VALUE.has(f)) {
      const v = flags[++i];
      if (v === undefined) break;
      if (DROP_WITH_VALUE.has(f)) continue;
      if (f === '-x') continue; // the language is fixed by us: c for -E, cpp-output for the .i
      preprocess.push(f, v);
      if (f === '-target' || f === '--sysroot' || f === '-isysroot' || f === '-arch') semantic.push(f, v);
      if (f === '-Xclang' && !/^-(ast-|fdump-)/.test(v)) semantic.push(f, v);
      continue;
    }
    if (!f.startsWith('-') || f === '-') {
      inputs.push(f);
      continue;
    }
    // glued output / dependency / link values: -oout.o, -MFdeps.d, -lm, -L/usr/lib
    if (/^-(o|MF|MT|MQ|L|l|T)./.test(f)) continue;
    preprocess.push(f);
    if (
      /^-(std=|ansi$|m|f|target=|-target=)/.test(f) &&
      !/^-f(diagnostics|color|message-length|debug-prefix-map|file-prefix-map|macro-prefix-map)/.test(f)
    ) {
      semantic.push(f);
    }
  }
  return { preprocess, semantic, inputs };
}

/** Whether a compiler option takes its value from the next argument (`-o out.o`, `-I inc`). */
export function takesValue(flag: string): boolean {
  return TAKES_VALUE.has(flag);
}

const PREPROCESSOR_ALONE = new Set(['-c', '-E', '-MD', '-MMD', '-MP', '-MG', '-nostdinc', '-P', '-C', '-CC']);

/**
 * Flags of the real compile that still matter when compiling the already preprocessed unit:
 * code generation, warning and language options (with their values); preprocessor-only options,
 * output selection and input files are dropped.
 */
export function codegenFlags(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    if (PREPROCESSOR_WITH_VALUE.has(f)) {
      i++;
      continue;
    }
    if (
      !f.startsWith('-') ||
      PREPROCESSOR_ALONE.has(f) ||
      /^-(I|D|U|MF|MT|MQ|o).+/.test(f) ||
      f.startsWith('-Wp,')
    )
      continue;
    out.push(f);
    if (TAKES_VALUE.has(f) && i + 1 < flags.length) out.push(flags[++i]);
  }
  return out;
}

/** The dependency-file options of the real compile (-MD/-MMD with -MF/-MT/-MQ/-MP), to reproduce them. */
export function dependencyFlags(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    if (f === '-MD' || f === '-MMD' || f === '-MP' || f === '-MG') out.push(f);
    else if (f === '-MF' || f === '-MT' || f === '-MQ') out.push(f, flags[++i]);
    else if (/^-M[FTQ].+/.test(f)) out.push(f);
  }
  return out.some((f) => f === '-MD' || f === '-MMD') ? out : [];
}

/** Flags that keep clang quiet about gcc-only options while reading units. */
export const QUIET_FLAGS = ['-w', '-Qunused-arguments', '-Wno-unknown-warning-option', '-Wno-error'];
