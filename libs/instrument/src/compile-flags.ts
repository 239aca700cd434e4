/**
 * Flags of the real compile that still matter when compiling the already preprocessed unit:
 * preprocessor-only options (-I, -D, -include, dependency output) are dropped, code generation,
 * warning and language options are kept.
 */
const PREPROCESSOR_WITH_VALUE = new Set(['-I', '-D', '-U', '-include', '-imacros', '-isystem', '-iquote', '-idirafter', '-iprefix', '-iwithprefix', '-MF', '-MT', '-MQ', '-o', '-x']);
const PREPROCESSOR_ALONE = new Set(['-c', '-E', '-MD', '-MMD', '-MP', '-MG', '-nostdinc', '-P', '-C', '-CC']);
const GLUED = /^-(I|D|U|MF|MT|MQ|o).+/;

export function codegenFlags(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i];
    if (PREPROCESSOR_WITH_VALUE.has(f)) {
      i++;
      continue;
    }
    if (PREPROCESSOR_ALONE.has(f) || GLUED.test(f) || f.startsWith('-Wp,')) continue;
    if (!f.startsWith('-')) continue; // inputs
    out.push(f);
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
