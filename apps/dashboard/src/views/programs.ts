import { api } from '../api';
import { badge, h, mount, short, when } from '../dom';
import type { Page } from '../main';
import type { PatchView, VerdictView, VersionView } from '../types';

interface Details {
  program: string;
  versions: VersionView[];
  patches: PatchView[];
  verdicts: VerdictView[];
  /** The feed's programs topic when these were read: a change reloads them. */
  seen: string;
}
let open: Details | null = null;
let loading = '';

/** Each program's lineage; the selected one with its builds and the patch between each pair. */
export function renderPrograms(page: Page, root: HTMLElement): void {
  const programs = page.feed.programs;
  if (!programs) return mount(root, h('p', { class: 'empty' }, 'Waiting for the live feed…'));
  const selected = open?.program ?? programs[0]?.program;
  const stamp = JSON.stringify(programs.find((p) => p.program === selected) ?? null);
  if (selected && (open?.program !== selected || open.seen !== stamp) && loading !== stamp) {
    loading = stamp;
    void load(selected, stamp).then(() => renderPrograms(page, root), (err) => page.problem(err));
  }
  mount(
    root,
    h(
      'nav',
      { class: 'programs' },
      programs.map((p) =>
        h(
          'button',
          { class: p.program === selected ? 'tab on' : 'tab', onclick: () => ((open = { ...(open as Details), program: p.program, seen: '' }), renderPrograms(page, root)) },
          `${p.program} (${p.versions.length})`,
        ),
      ),
    ),
    open && open.program === selected ? lineage(open) : h('p', { class: 'empty' }, programs.length ? 'Loading…' : 'No program registered yet.'),
  );
}

async function load(program: string, seen: string): Promise<void> {
  const q = encodeURIComponent(program);
  const [versions, patches, verdicts] = await Promise.all([
    api<VersionView[]>(`/programs/${q}/versions`),
    api<PatchView[]>(`/patches?program=${q}`),
    api<VerdictView[]>(`/verdicts?program=${q}`),
  ]);
  open = { program, versions, patches, verdicts, seen };
}

function lineage(d: Details): HTMLElement {
  return h(
    'section',
    { class: 'lineage' },
    d.versions.map((v) => {
      const patch = v.patch?.id ? d.patches.find((p) => p.patchId === v.patch?.id) : undefined;
      const verdict = patch ? d.verdicts.find((x) => x.patchId === patch.patchId) : undefined;
      return h(
        'article',
        { class: 'card version', 'data-version': v.version },
        h(
          'header',
          {},
          h('h2', {}, `${d.program} ${v.version}`),
          badge(v.status),
          h('span', { class: 'meta' }, `build ${short(v.buildId)} · submitted ${when(v.requestedAt)} · built ${when(v.builtAt)}${v.durationMs !== null ? ` in ${(v.durationMs / 1000).toFixed(1)} s` : ''}`),
        ),
        v.error ? h('p', { class: 'error' }, v.error) : null,
        v.diagnostics ? h('details', {}, h('summary', {}, 'compiler output'), h('pre', {}, v.diagnostics)) : null,
        v.patch ? patchBlock(v, patch, verdict) : null,
      );
    }),
  );
}

function patchBlock(v: VersionView, patch: PatchView | undefined, verdict: VerdictView | undefined): HTMLElement {
  const p = v.patch as NonNullable<VersionView['patch']>;
  const points = verdict?.updatePoints ?? p.updatePoints;
  return h(
    'div',
    { class: 'patch' },
    h('h3', {}, `patch ${p.fromVersion} → ${v.version} `, badge(p.verdict ?? p.status), h('span', { class: 'mono' }, ` ${short(p.id, 16)}`)),
    p.error ? h('p', { class: 'error' }, p.error) : null,
    patch && patch.functions.length
      ? h('ul', { class: 'functions' }, patch.functions.map((f) => h('li', {}, h('code', {}, f.key), ` ${f.change}`)))
      : null,
    patch?.types?.length
      ? h(
          'ul',
          { class: 'types' },
          patch.types.map((t) =>
            h(
              'li',
              {},
              h('code', {}, t.name),
              ` layout ${t.oldSize} → ${t.newSize} bytes, instances transformed ${t.mode === 'lazy' ? 'on first touch' : 'at the update point'}`,
              t.fields.length ? h('ul', {}, t.fields.map((f) => h('li', {}, h('code', {}, f.field), ` ${f.how}`))) : null,
            ),
          ),
        )
      : null,
    patch?.globals?.length
      ? h(
          'ul',
          { class: 'globals' },
          patch.globals.map((g) => h('li', {}, 'global ', h('code', {}, g.key), ` ${g.change}`, g.note ? ` (${g.note})` : '')),
        )
      : null,
    points
      ? h(
          'p',
          { class: 'points' },
          'update points allowed: ',
          points.allowed.length ? points.allowed.join(', ') : 'none',
          points.denied.length ? ['; denied: ', points.denied.map((d) => `${d.name} (${d.rules.join(', ')})`).join('; ')] : null,
        )
      : null,
    verdict && verdict.findings.length
      ? h(
          'ul',
          { class: 'findings' },
          verdict.findings.map((f) => h('li', { class: `finding ${f.severity}` }, badge(f.severity), ` ${f.rule}: ${f.message}`)),
        )
      : null,
  );
}
