/**
 * The patch.yaml snippets problems quote: each problem names exactly what to write, under the
 * function's key as `frames.<key>` (libs/patch-gen reads the same shape into a FrameOverride).
 */

/** A function key as a YAML mapping key: statics (`src/a.c::serve`) need quotes, plain names do not. */
function yamlKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key);
}

/** `frames:\n    <fn>:\n      <field>: <value>`, indented to follow a problem's first line. */
export function framesSnippet(fn: string, field: 'resume' | 'locals', value: string): string {
  return `in patch.yaml:\n  frames:\n    ${yamlKey(fn)}:\n      ${field}: ${value}`;
}

/** The snippet that gives a local its value. */
export function initSnippet(fn: string, local: string): string {
  return framesSnippet(fn, 'locals', `{ ${local}: { init: "<C expression>" } }`);
}

/** A list of names for a message; "none" rather than an empty string. */
export function nameList(names: readonly string[]): string {
  return names.length > 0 ? names.join(', ') : 'none';
}
