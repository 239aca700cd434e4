import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { splitFlags } from '@dsu/c-frontend';

const run = promisify(execFile);

/**
 * Code from patch.yaml (transformers, field code, defaults, the state transformer, the
 * when-condition) goes into a patch unit, which is preprocessed source: a macro of the program or
 * of libc (`s6_addr`, `LIST_FIRST`, the program's own) would stay unexpanded there. So the code is
 * marked where it is generated and, when the unit is written, preprocessed with the unit's own
 * source and flags in front of it: every macro the unit sees is expanded in it.
 */
const BEGIN = '__dsu_user_code_begin__';
const END = '__dsu_user_code_end__';

/** Marks a piece of patch.yaml code for macro expansion (see {@link expandUserCode}). */
export const userCode = (code: string): string => `${BEGIN}\n${code}\n${END}`;

/** How the unit was compiled (dsu-cc's sidecar `<object>.dsu.json`, `compile`). */
export interface UnitCompile {
  source: string;
  flags: string[];
  cwd: string;
}

/** The unit's compile as dsu-cc recorded it next to the object; undefined when it is gone. */
export function unitCompileOf(root: string, object: string): UnitCompile | undefined {
  const sidecar = join(root, object + '.dsu.json');
  if (!existsSync(sidecar)) return undefined;
  const c = (JSON.parse(readFileSync(sidecar, 'utf8')) as { compile?: UnitCompile }).compile;
  if (!c || !existsSync(c.cwd)) return undefined; // the build directory moved since it was built
  const source = isAbsolute(c.source) ? c.source : resolve(c.cwd, c.source);
  return existsSync(source) ? { source, flags: c.flags, cwd: c.cwd } : undefined;
}

/**
 * Expands the program's macros in the marked patch.yaml code of `text` (one preprocessor run
 * for the unit) and removes the marks. Without the unit's compile (`undefined`), or when the
 * preprocessor fails, the code stays as written and the reason is returned as a note.
 */
export async function expandUserCode(
  text: string,
  compile: UnitCompile | undefined,
  clang: string,
): Promise<{ text: string; note?: string }> {
  // The generator may indent the marked lines (a transformer's body): the marks keep their line.
  const marked = new RegExp(`${BEGIN}[ \\t]*\\n([\\s\\S]*?)\\n[ \\t]*${END}`, 'g');
  const pieces = [...text.matchAll(marked)].map((m) => m[1]);
  const plain = () => text.replace(marked, (_m, code: string) => code);
  if (pieces.length === 0) return { text };
  if (!compile) return { text: plain(), note: 'the code from patch.yaml was not macro-expanded: the build directory has no record of how its unit was compiled' };
  const dir = mkdtempSync(join(tmpdir(), 'dsu-user-code-'));
  try {
    const file = join(dir, 'user.c');
    writeFileSync(
      file,
      `#include ${JSON.stringify(compile.source)}\n` + pieces.map((p, i) => `${BEGIN}${i}\n${p}\n${END}${i}\n`).join(''),
    );
    const { preprocess } = splitFlags(compile.flags);
    const { stdout: out } = await run(clang, [...preprocess, '-E', '-P', '-x', 'c', file, '-o', '-'], {
      cwd: compile.cwd,
      maxBuffer: 256 * 1024 * 1024,
    });
    const expanded = pieces.map((p, i) => {
      const m = new RegExp(`${BEGIN}${i}\\n([\\s\\S]*?)\\n?${END}${i}`).exec(out);
      return m ? m[1] : p;
    });
    let i = 0;
    return { text: text.replace(marked, () => expanded[i++]) };
  } catch (err) {
    return { text: plain(), note: `the code from patch.yaml was not macro-expanded: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
