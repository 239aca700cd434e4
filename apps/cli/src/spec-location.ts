import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { CliError } from './errors';

// patch.yaml errors name the file, line and column (`patch.yaml:3:5: when.points must be ...`), so
// the user goes straight to the place: YAML syntax errors from the parser's own position, and the
// checks' errors (which name a key path, e.g. `when.points` or `unknown key 'x'`) from the node
// at that path in the parsed document.

/** 1-based line and column of byte offset `offset` in `text`. */
function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

/** The offset of the deepest key of `keys` found in the document (a missing tail is ignored). */
function offsetOf(doc: YAML.Document.Parsed, keys: string[]): number | undefined {
  let node: unknown = doc.contents;
  let found: number | undefined;
  for (const k of keys) {
    const items = (
      node as { items?: { key?: { value?: unknown; range?: [number, number] }; value?: unknown }[] }
    )?.items;
    const pair = items?.find((p) => p.key?.value === k);
    if (!pair) break;
    found = pair.key?.range?.[0];
    node = pair.value;
  }
  return found;
}

/** The key path an error of readSpec names: `unknown key 'k'`, or the dotted path before the first blank. */
function keysNamedBy(message: string): string[] {
  const unknown = /^unknown key '([^']+)'/.exec(message);
  if (unknown) return [unknown[1]];
  return (message.split(/\s/)[0] ?? '').split('.').filter(Boolean);
}

/**
 * Runs `read` (which parses and checks the spec file `path`); an error it throws comes back as an
 * `invalid-spec` error `<path>:<line>:<col>: <what>` when the place can be found, else as it said.
 */
export function withSpecLocation<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    const e = err as Error & { source?: { range?: { start: number } } };
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new CliError('invalid-spec', e.message);
    }
    // a YAML syntax error: the parser knows where it stopped
    if (e.source?.range && /^YAML/.test(e.name)) {
      const { line, col } = lineCol(text, e.source.range.start);
      throw new CliError('invalid-spec', `${path}:${line}:${col}: ${e.message.split('\n')[0]}`);
    }
    const prefix = `${path}: `;
    if (!e.message.startsWith(prefix)) throw new CliError('invalid-spec', e.message);
    const what = e.message.slice(prefix.length);
    const at = offsetOf(YAML.parseDocument(text), keysNamedBy(what));
    if (at === undefined) throw new CliError('invalid-spec', e.message);
    const { line, col } = lineCol(text, at);
    throw new CliError('invalid-spec', `${path}:${line}:${col}: ${what}`);
  }
}
