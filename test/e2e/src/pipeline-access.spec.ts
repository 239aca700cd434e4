// The gateway's trust boundary on real processes: `dsu up` as a user runs it, the dsu command
// with the token `dsu up` wrote (zero configuration) and with tokens an admin made, and what a
// web page or a rebinding DNS name could send. A refused request leaves nothing behind; tokens
// are stored hashed; a revoked token stops working; the audit log names who did what.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { request } from 'node:http';
import * as path from 'node:path';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir } from './support/fixtures';
import { embeddedUp, getJson, localToken, startService, stopAllServices } from './support/pipeline-services';

jest.setTimeout(300_000);

let work = '';
beforeAll(() => {
  work = makeTempDir('dsu-e2e-access-');
});
afterAll(async () => {
  await stopAllServices();
  if (work) removeDir(work);
});

/** One raw HTTP request (node:http, so Host and Origin can be anything a browser or DNS could make them). */
function send(
  port: number,
  method: string,
  urlPath: string,
  headers: Record<string, string>,
  body?: Buffer | string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const countFiles = (dir: string) =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).length : 0;

describe('the gateway trust boundary (dsu up, real processes)', () => {
  it('needs tokens with the right scope, refuses browsers and rebinding names, and audits who did what', async () => {
    const { port, gateway, home, env } = await embeddedUp(work, 'access');
    const cli = (args: string[], extra: Record<string, string> = {}) =>
      dsu(args, { ...env, DSU_GATEWAY: gateway, ...extra });
    const up = await startService('up', env, work, 'access-up');
    const admin = localToken(env);
    expect(fs.statSync(path.join(home, 'token')).mode & 0o777).toBe(0o600);
    const submit = (v: string, extra: Record<string, string> = {}) =>
      cli(
        [
          'submit',
          fixtureSourceDir('pollserver', v),
          '--program',
          'pollserver',
          '--version',
          v,
          '--update-point',
          'serve:loop',
        ],
        extra,
      );

    // No token: 401 with what to do, and nothing stored.
    const json = { 'content-type': 'application/json' };
    const p = await send(port, 'POST', '/programs', json, JSON.stringify({ id: 'pollserver' }));
    expect(p.status).toBe(401);
    expect(JSON.parse(p.body).error).toMatch(/Authorization: Bearer/);
    const r = await send(
      port,
      'POST',
      '/rollouts',
      json,
      JSON.stringify({ program: 'pollserver', version: 'v1' }),
    );
    expect(r.status).toBe(401);
    expect(await getJson(`${gateway}/programs`)).toEqual([]);
    expect(await getJson(`${gateway}/rollouts`)).toEqual([]);

    // The local user's CLI finds the admin token by itself; an admin makes scoped tokens.
    const bot = await cli(['token', 'create', '--name', 'ci-bot', '--scopes', 'submit,rollout,read']);
    expect(bot).toMatchObject({ code: 0, json: { name: 'ci-bot', scopes: ['submit', 'rollout', 'read'] } });
    const botToken = bot.json.token as string;
    const reader = (await cli(['token', 'create', '--name', 'dashboard', '--scopes', 'read'])).json
      .token as string;

    // A read token cannot submit: 403, nothing stored.
    const denied = await submit('v1', { DSU_TOKEN: reader });
    expect(denied.code).toBe(1);
    expect(denied.json.error).toEqual({
      code: 'forbidden',
      message: expect.stringMatching(/HTTP 403.*'dashboard'.*needs 'submit'/),
    });
    expect(await getJson(`${gateway}/programs`)).toEqual([]);

    expect((await submit('v1', { DSU_TOKEN: botToken })).json).toMatchObject({ build: { status: 'built' } });

    // A web page's cross-origin text/plain POST (no preflight) of a real source tarball: refused,
    // nothing stored, nothing built.
    const artifacts = countFiles(path.join(home, 'artifacts'));
    const tarball = execFileSync('tar', ['czf', '-', '-C', fixtureSourceDir('pollserver', 'v2'), '.']);
    for (const headers of [
      { 'content-type': 'text/plain', origin: 'http://evil.example' },
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/gzip', origin: 'http://evil.example', authorization: `Bearer ${admin}` },
    ] as Record<string, string>[]) {
      const res = await send(port, 'POST', '/programs/pollserver/versions/v2', headers, tarball);
      expect([401, 403]).toContain(res.status);
    }
    // Even with a valid token, the wrong Content-Type is refused.
    expect(
      (
        await send(
          port,
          'POST',
          '/programs/pollserver/versions/v2',
          { 'content-type': 'text/plain', authorization: `Bearer ${admin}` },
          tarball,
        )
      ).status,
    ).toBe(415);
    await new Promise((res) => setTimeout(res, 1500));
    expect(
      (await send(port, 'GET', '/programs/pollserver/versions/v2', { authorization: `Bearer ${admin}` }))
        .status,
    ).toBe(404);
    expect(countFiles(path.join(home, 'artifacts'))).toBe(artifacts);

    // A foreign Origin and a rebinding Host are refused even for reads with a valid token.
    const auth = { authorization: `Bearer ${admin}` };
    expect((await send(port, 'GET', '/programs', { ...auth, origin: 'https://evil.example' })).status).toBe(
      403,
    );
    const rebound = await send(port, 'GET', '/programs', { ...auth, host: `rebind.evil.example:${port}` });
    expect(rebound.status).toBe(403);
    expect(JSON.parse(rebound.body).error).toMatch(/DNS rebinding/);
    expect((await send(port, 'GET', '/health', { host: 'anything.example' })).status).toBe(200);

    // The bot submits v2 (patched, checked) and rolls it out: the audit log names it and the checker.
    expect((await submit('v2', { DSU_TOKEN: botToken })).json).toMatchObject({
      patch: { verdict: 'approved' },
    });
    // No process runs here: the rollout updates nothing, which --allow-empty accepts.
    const rollout = await cli(['rollout', 'pollserver', '--to', 'v2', '--allow-empty'], {
      DSU_TOKEN: botToken,
    });
    expect(rollout.code).toBe(0);
    const audit = await cli(['audit', '--program', 'pollserver']);
    expect(audit.code).toBe(0);
    const rows = (
      audit.json as unknown as { action: string; target: string; outcome: string; actor: { name: string } }[]
    ).map((a) => `${a.action} ${a.target} ${a.outcome} ${a.actor.name}`);
    expect(rows).toEqual([
      'program.register null created ci-bot',
      'version.submit v1 accepted ci-bot',
      'version.submit v2 accepted ci-bot',
      expect.stringMatching(/^patch\.verdict [0-9a-f]{64} approved checker \(key /),
      'rollout.request v2 accepted ci-bot',
    ]);

    // Tokens are stored hashed: the database files never hold a token.
    const db = fs
      .readdirSync(home)
      .filter((f) => f.startsWith('dsu.sqlite'))
      .map((f) => fs.readFileSync(path.join(home, f)).toString('latin1'))
      .join('');
    for (const t of [admin, botToken, reader]) expect(db).not.toContain(t);
    expect(db).toContain(createHash('sha256').update(botToken).digest('hex'));

    // Revoked: the token stops working at once.
    expect((await cli(['token', 'revoke', bot.json.id as string])).code).toBe(0);
    const after = await cli(['versions', 'pollserver'], { DSU_TOKEN: botToken });
    expect(after.code).toBe(1);
    expect(after.json.error).toEqual({
      code: 'unauthorized',
      message: expect.stringMatching(/HTTP 401.*revoked/),
    });
    const list = (await cli(['token', 'list'])).json as unknown as { name: string; revoked: boolean }[];
    expect(list.find((t) => t.name === 'ci-bot')).toMatchObject({ revoked: true });
    expect((await cli(['audit'])).json).toEqual(
      expect.arrayContaining([expect.objectContaining({ action: 'token.revoke', target: bot.json.id })]),
    );

    await up.stop('SIGTERM');
    expect(up.log()).not.toMatch(/"level":"(error|fatal)"/);
  });
});
