import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { openDatabase } from '@dsu/persistence';
import { PostgresForSuite, providePostgres } from '@dsu/testing';
import {
  AccessError,
  authenticate,
  createToken,
  ensureLocalToken,
  grants,
  hashToken,
  listAudit,
  listTokens,
  parseScopes,
  recordAudit,
  revokeToken,
  type Actor,
} from './index';

const admin: Actor = { kind: 'token', id: 'tok_admin', name: 'ops' };

/** The token life cycle and the audit log, against whichever database `open` gives. */
function lifecycle(open: () => Promise<DataSource>) {
  let ds: DataSource;
  beforeAll(async () => {
    ds = await open();
  }, 120_000);
  afterAll(async () => ds?.destroy());

  it('stores only the hash of a token, authenticates it, and stops after revoke', async () => {
    const t = await createToken(ds, { name: 'ci', scopes: 'submit,read', by: admin });
    expect(t.token).toMatch(/^dsu_[A-Za-z0-9_-]{43}$/);
    const raw = JSON.stringify(await ds.query('SELECT * FROM api_tokens'));
    expect(raw).not.toContain(t.token);
    expect(raw).not.toContain(t.token.slice(4));
    expect(raw).toContain(hashToken(t.token));
    expect(await authenticate(ds, t.token)).toEqual({
      kind: 'token',
      id: t.id,
      name: 'ci',
      scopes: ['submit', 'read'],
    });
    expect((await listTokens(ds)).find((x) => x.id === t.id)).toMatchObject({
      name: 'ci',
      revoked: false,
      lastUsedAt: expect.any(String),
    });
    expect(await authenticate(ds, t.token + 'x')).toBeNull();
    expect(await authenticate(ds, 'not-a-token')).toBeNull();
    await revokeToken(ds, t.id, admin);
    expect(await authenticate(ds, t.token)).toBeNull();
    // Idempotent, and the audit log has one create and one revoke, by the admin.
    await revokeToken(ds, t.id, admin);
    const audit = (await listAudit(ds)).filter((a) => a.target === t.id);
    expect(audit.map((a) => [a.action, a.outcome, a.actor.name])).toEqual([
      ['token.create', 'created', 'ops'],
      ['token.revoke', 'revoked', 'ops'],
    ]);
    expect(JSON.stringify(audit)).not.toContain(t.token);
  });

  it('refuses bad names, unknown scopes and unknown ids with what to do', async () => {
    await expect(createToken(ds, { name: 'a b', scopes: 'read', by: admin })).rejects.toThrow(/token name/);
    await expect(createToken(ds, { name: 'x', scopes: 'read,root', by: admin })).rejects.toThrow(
      /unknown scope 'root'; scopes are submit, rollout, read, admin/,
    );
    await expect(revokeToken(ds, 'tok_nope', admin)).rejects.toThrow(AccessError);
    await expect(revokeToken(ds, 'tok_nope', admin)).rejects.toThrow(/dsu token list/);
  });

  it('pages the audit log per program, oldest first within the latest rows', async () => {
    for (const v of ['v1', 'v2', 'v3'])
      await ds.transaction((em) =>
        recordAudit(em, {
          actor: admin,
          action: 'version.submit',
          program: 'kv',
          target: v,
          outcome: 'accepted',
        }),
      );
    await ds.transaction((em) =>
      recordAudit(em, {
        actor: admin,
        action: 'version.submit',
        program: 'other',
        target: 'v1',
        outcome: 'accepted',
      }),
    );
    expect((await listAudit(ds, { program: 'kv' })).map((a) => a.target)).toEqual(['v1', 'v2', 'v3']);
    expect((await listAudit(ds, { program: 'kv', limit: 2 })).map((a) => a.target)).toEqual(['v2', 'v3']);
  });
}

describe('access on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsu-access-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  lifecycle(() => openDatabase({ sqlitePath: join(dir, 'dsu.sqlite') }));

  it('writes the local admin token once, mode 0600, and replaces it when revoked', async () => {
    const ds = await openDatabase({ sqlitePath: join(dir, 'local.sqlite') });
    try {
      const file = join(dir, 'home', 'token');
      const first = await ensureLocalToken(ds, file);
      expect(first.created).toBe(true);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const token = readFileSync(file, 'utf8').trim();
      expect((await authenticate(ds, token))?.scopes).toEqual(['admin']);
      expect(await ensureLocalToken(ds, file)).toEqual({ path: file, id: first.id, created: false });
      await revokeToken(ds, first.id, admin);
      const again = await ensureLocalToken(ds, file);
      expect(again.created).toBe(true);
      expect(readFileSync(file, 'utf8').trim()).not.toBe(token);
      writeFileSync(file, 'dsu_garbage\n');
      expect((await ensureLocalToken(ds, file)).created).toBe(true);
    } finally {
      await ds.destroy();
    }
  });
});

describe('access on a real PostgreSQL (migrations included)', () => {
  let pg: PostgresForSuite;
  lifecycle(async () => {
    pg = await providePostgres('access');
    return openDatabase({ databaseUrl: pg.databaseUrl });
  });
  afterAll(async () => pg?.cleanup(), 60_000);
});

describe('scopes', () => {
  it('admin implies every scope; the others only themselves', () => {
    expect(grants(['admin'], 'rollout')).toBe(true);
    expect(grants(['read'], 'submit')).toBe(false);
    expect(grants(['submit', 'rollout'], 'rollout')).toBe(true);
    expect(parseScopes(' submit, read ,read')).toEqual(['submit', 'read']);
    expect(() => parseScopes('')).toThrow(/at least one scope/);
  });
});
