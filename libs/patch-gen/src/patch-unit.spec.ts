import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit, findClang } from '@dsu/c-frontend';
import { applyEdits, staticSymbol } from '@dsu/instrument';
import { planPatchUnit } from './patch-unit';

describe('planPatchUnit', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-patchunit-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defines an added (or renamed) file-level static under its exported name, so later patches find it', async () => {
    const src = join(dir, 'u.c');
    writeFileSync(
      src,
      'static long stamps = 5;\nstatic int kept;\nlong bump(void) { return ++stamps + kept; }\n',
    );
    const clang = findClang().path;
    const a = await analyzeUnit({
      source: src,
      flags: ['-O2'],
      cwd: dir,
      unitPath: 'u.c',
      clang,
      skipLayout: true,
    });
    const plan = planPatchUnit(a, {
      changed: new Set(['bump']),
      added: new Set(),
      programFunctions: new Map([['bump', { unitId: a.unit.id, isStatic: false }]]),
      suffix: 'vtest',
      updatePoints: [],
      addedVariables: new Set(['u.c::stamps']),
    });
    const text = applyEdits(a.preprocessed, plan.edits).toString('latin1');
    const added = staticSymbol(a.unit.id, ['stamps']);
    // defined by the patch (initializer kept), exported under the name the new version's build gives it
    expect(text).toContain(`long stamps __asm__("${added}") = 5;`);
    expect(text).not.toMatch(/static long stamps/);
    // a static the running program already has stays a declaration of the program's
    expect(text).toContain(`extern int kept __asm__("${staticSymbol(a.unit.id, ['kept'])}");`);
    const i = join(dir, 'u.patch.i');
    writeFileSync(i, text);
    execFileSync(clang, ['-c', '-x', 'cpp-output', i, '-o', join(dir, 'u.o')]);
    const nm = execFileSync('nm', [join(dir, 'u.o')], { encoding: 'utf8' });
    expect(nm).toMatch(new RegExp(`^[0-9a-f]+ D ${added}$`, 'm'));
    expect(nm).toMatch(new RegExp(`^ +U ${staticSymbol(a.unit.id, ['kept'])}$`, 'm'));
  }, 60_000);
});
