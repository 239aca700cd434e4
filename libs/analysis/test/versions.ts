import { join } from 'node:path';
import { analyzeUnit, buildProgramModel, findClang, type ProgramModel } from '@dsu/c-frontend';
import type { PatchManifest } from '@dsu/patch-format';

const ROOT = join(__dirname, '../../..');
const RUNTIME_INCLUDE = join(ROOT, 'libs/runtime/include');

/** The program model of a one-file fixture version (test/fixtures/safety/<name>/<version>/<file>). */
export async function modelOf(name: string, version: string, file: string): Promise<ProgramModel> {
  const cwd = join(ROOT, 'test/fixtures/safety', name, version);
  const unit = await analyzeUnit({
    source: file,
    flags: ['-std=gnu11', '-O2', `-I${RUNTIME_INCLUDE}`, '-c', file],
    cwd,
    clang: findClang().path,
  });
  // dsu-cc gives updatable structs room (capacity above size); the front end alone does not
  for (const t of unit.types) if (t.kind === 'struct' && t.updatable) t.capacity = t.size + 32;
  return buildProgramModel(name, `${name}-${version}`, [unit]);
}

/**
 * The manifest facts the rules read, derived the way dsu patch derives them (changed bodies and
 * signatures, changed layouts, functions that use a changed type, added and removed globals);
 * enough for the rules' specs without compiling a patch.so.
 */
export function manifestOf(from: ProgramModel, to: ProgramModel): PatchManifest {
  const types = Object.values(to.types)
    .filter((t) => t.kind === 'struct' && from.types[t.key] && from.types[t.key].layoutHash !== t.layoutHash)
    .map((t) => ({
      name: t.key,
      oldLayoutHash: from.types[t.key].layoutHash,
      newLayoutHash: t.layoutHash,
      oldSize: from.types[t.key].size,
      newSize: t.size,
      capacity: from.types[t.key].capacity,
      mode: 'eager' as const,
      transformer: '',
      fields: [],
      instances: { heap: '', globals: [], embeddedIn: [] },
    }));
  const changed = new Set(types.map((t) => t.name));
  const functions: PatchManifest['functions'] = [];
  for (const f of Object.values(to.functions)) {
    const old = from.functions[f.key];
    if (!old) functions.push({ key: f.key, change: 'added' });
    else if (old.signature !== f.signature) functions.push({ key: f.key, change: 'signature' });
    else if (old.bodyHash !== f.bodyHash)
      functions.push({ key: f.key, change: 'body', reasons: ['body changed'] });
    else if (old.typesUsed.some((t) => changed.has(t)))
      functions.push({ key: f.key, change: 'body', reasons: ['uses a changed type concretely'] });
  }
  const globals: PatchManifest['globals'] = [
    ...Object.keys(to.globals)
      .filter((k) => !from.globals[k])
      .map((key) => ({ key, change: 'added' as const })),
    ...Object.keys(to.globals)
      .filter((k) => from.globals[k] && from.globals[k].initHash !== to.globals[k].initHash)
      .map((key) => ({ key, change: 'initializer' as const })),
  ];
  return {
    format: 1,
    patchId: 'test',
    program: to.program,
    from: { buildId: from.buildId, version: 'v1' },
    to: { buildId: to.buildId, version: 'v2' },
    soSha256: '0'.repeat(64),
    functions,
    types,
    globals,
    allowedUpdatePoints: [],
  };
}
