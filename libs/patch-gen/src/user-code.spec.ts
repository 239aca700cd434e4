import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findClang } from '@dsu/c-frontend';
import { expandUserCode, userCode } from './user-code';

// patch.yaml code is macro-expanded with its unit's source and flags; the marks around it never
// reach the compiler, wherever the generator put them (indented inside a transformer's body too).
describe('expandUserCode', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dsu-user-code-spec-'));
    writeFileSync(
      join(dir, 'unit.c'),
      '#define WIDTH 16\n#define COPY(d, s) __builtin_memcpy(d, s, 4)\nint x;\n',
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const indent = (s: string, by: string) =>
    s
      .split('\n')
      .map((l) => by + l)
      .join('\n');

  it("expands the unit's macros in marked code, also when the generator indented the marks", async () => {
    const text = [
      'void f(char *n, const char *old) {',
      indent(userCode('COPY(n, old);\n'), '    '),
      '}',
      `int w = ${userCode('WIDTH')};`,
    ].join('\n');
    const r = await expandUserCode(
      text,
      { source: join(dir, 'unit.c'), flags: [], cwd: dir },
      findClang().path,
    );
    expect(r.note).toBeUndefined();
    expect(r.text).not.toMatch(/__dsu_user_code_(begin|end)__/);
    expect(r.text).toMatch(/__builtin_memcpy\(n, old, 4\);/);
    expect(r.text).toMatch(/int w = 16;/);
  });

  it('leaves the code as written, without the marks, when the unit is unknown, and says so', async () => {
    const r = await expandUserCode(`  ${userCode('WIDTH')}\n`, undefined, findClang().path);
    expect(r.text).toBe('  WIDTH\n');
    expect(r.note).toMatch(/not macro-expanded/);
  });
});
