// The local path signs and verifies like the pipeline, through the real CLI on a real process:
// `dsu check` signs an approved bundle with the local key, and `dsu apply` refuses a bundle that
// was never checked, is unsigned, was altered after signing (even with every hash in the manifest
// recomputed), or was made for another build — each before STAGE, with the program left serving
// its old code. A signed bundle applies; a key from elsewhere applies once `dsu keys add` trusts
// it; `--allow-unsigned` applies an unchecked bundle and says so.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { computePatchId, type PatchManifest } from '@dsu/patch-format';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers, type RunningServer } from './support/fixtures';
import { converse } from './support/line-client';

let work = '';
let runDir = '';
let homeA = ''; // this machine's DSU_HOME: its signing key and trust store
let homeB = ''; // another checker's DSU_HOME (a key this machine does not trust yet)
const asA = (args: string[]) => dsu(args, { DSU_HOME: homeA, DSU_TRUSTED_KEY: '' });
const asB = (args: string[]) => dsu(args, { DSU_HOME: homeB, DSU_TRUSTED_KEY: '' });

beforeAll(() => {
  work = makeTempDir('dsu-e2e-signing-');
  runDir = path.join(work, 'run');
  homeA = path.join(work, 'home-a');
  homeB = path.join(work, 'home-b');
  fs.mkdirSync(runDir, { mode: 0o700 });
});
afterAll(async () => {
  await stopAllServers();
  if (work) removeDir(work);
});

const dir = (v: string) => path.join(work, 'pollserver', v);
const copyBundle = (from: string, to: string) => {
  fs.cpSync(from, to, { recursive: true });
  return to;
};

/** What an attacker with write access to the bundle does: new patch.so, every hash recomputed. */
function tamper(bundle: string): void {
  const so = Buffer.concat([fs.readFileSync(path.join(bundle, 'patch.so')), Buffer.from('\0evil')]);
  fs.writeFileSync(path.join(bundle, 'patch.so'), so);
  const m = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')) as PatchManifest;
  const body = { ...m, soSha256: createHash('sha256').update(so).digest('hex') };
  const manifest = { ...body, patchId: computePatchId(body, so) };
  fs.writeFileSync(path.join(bundle, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  const verdict = JSON.parse(fs.readFileSync(path.join(bundle, 'verdict.json'), 'utf8'));
  fs.writeFileSync(path.join(bundle, 'verdict.json'), JSON.stringify({ ...verdict, patchId: manifest.patchId }));
}

describe('dsu check signs, dsu apply verifies (pollserver)', () => {
  let server: RunningServer;
  let p12 = ''; // checked and signed on this machine (home A)
  let p23 = ''; // checked and signed by another checker (home B)
  beforeAll(async () => {
    for (const v of ['v1', 'v2', 'v3']) {
      const r = await asA(['build', fixtureSourceDir('pollserver', v), '--out', dir(v), '--label', v, '--update-point', 'serve:loop']);
      expect(r).toMatchObject({ code: 0, json: { program: 'pollserver', version: v } });
    }
    p12 = path.join(work, 'p12');
    p23 = path.join(work, 'p23');
    expect((await asA(['patch', dir('v1'), dir('v2'), '--out', p12])).code).toBe(0);
    expect((await asA(['patch', dir('v2'), dir('v3'), '--out', p23])).code).toBe(0);
    server = await startServer(path.join(dir('v1'), 'pollserver'), { env: { DSU_RUN_DIR: runDir } });
  }, 300_000);
  afterAll(() => server?.stop());

  const apply = (bundle: string, extra: string[] = [], as = asA) =>
    as(['apply', bundle, '--pid', String(server.pid), '--timeout-ms', '5000', '--run-dir', runDir, ...extra]);

  it('refuses unchecked, unsigned, tampered and wrong-build bundles; the program keeps serving v1', async () => {
    const unchecked = await apply(copyBundle(p12, path.join(work, 'p12-unchecked')));
    expect(unchecked).toMatchObject({ code: 1, json: { outcome: 'refused', pauseUs: 0, updatePoint: null, refusal: 'not-checked' } });
    expect(unchecked.json.reasons).toEqual([expect.stringMatching(/never checked.*run 'dsu check/)]);

    const check = await asA(['check', p12]);
    expect(check).toMatchObject({ code: 0, json: { verdict: 'approved', signature: { keyId: expect.any(String) } } });
    expect(fs.existsSync(path.join(p12, 'signature.json'))).toBe(true);
    const keys = await asA(['keys']);
    expect(keys.json).toMatchObject({ signingKey: { keyId: (check.json.signature as { keyId: string }).keyId } });

    const unsigned = copyBundle(p12, path.join(work, 'p12-unsigned'));
    fs.rmSync(path.join(unsigned, 'signature.json'));
    expect(await apply(unsigned)).toMatchObject({ code: 1, json: { outcome: 'refused', refusal: 'unsigned' } });

    const tampered = copyBundle(p12, path.join(work, 'p12-tampered'));
    tamper(tampered);
    const t = await apply(tampered);
    expect(t).toMatchObject({ code: 1, json: { outcome: 'refused', refusal: 'altered' } });
    expect(t.json.reasons?.[0]).toMatch(/changed after it was signed \(manifest.json, patch.so, verdict.json\)/);

    // a v2 -> v3 patch, checked and signed here, is for another build than the running v1
    const p23here = copyBundle(p23, path.join(work, 'p23-here'));
    expect((await asA(['check', p23here])).code).toBe(0);
    const wrong = await apply(p23here);
    expect(wrong).toMatchObject({ code: 1, json: { outcome: 'refused', refusal: 'wrong-build' } });
    expect(wrong.json.reasons?.[0]).toMatch(/runs build \w+, but patch \w+ moves build \w+ \(v2\) to v3/);

    expect(await converse(server.port, ['VERSION', 'PING'])).toEqual(['pollserver 1', 'PONG']);
    const status = await asA(['status', '--pid', String(server.pid), '--run-dir', runDir]);
    expect(status.json).toMatchObject({ patches: [], staged: null });
    expect(server.exited()).toBe(false);
  }, 120_000);

  it('applies the signed bundle, and a bundle signed elsewhere once its key is trusted', async () => {
    const a12 = await apply(p12);
    expect(a12).toMatchObject({ code: 0, json: { outcome: 'applied', reasons: [], signature: { verified: true } } });
    expect(a12.stderr).not.toMatch(/WARNING/);
    expect(await converse(server.port, ['VERSION'])).toEqual(['pollserver 2']);

    expect((await asB(['check', p23])).code).toBe(0); // signed with home B's key
    const untrusted = await apply(p23);
    expect(untrusted).toMatchObject({ code: 1, json: { outcome: 'refused', refusal: 'untrusted-key' } });
    expect(untrusted.json.reasons?.[0]).toMatch(/not trusted.*dsu keys add/);
    expect(await converse(server.port, ['VERSION'])).toEqual(['pollserver 2']);

    const added = await asA(['keys', 'add', path.join(homeB, 'keys', 'checker-ed25519.pub.pem'), '--name', 'checker-b']);
    expect(added).toMatchObject({ code: 0, json: { added: [{ name: 'checker-b' }] } });
    const a23 = await apply(p23);
    expect(a23).toMatchObject({ code: 0, json: { outcome: 'applied', signature: { verified: true, keyName: 'checker-b' } } });
    expect(await converse(server.port, ['VERSION', 'PING'])).toEqual(['pollserver 3', 'PONG 3']);

    const keyId = (added.json.added as { keyId: string }[])[0].keyId;
    expect(await asA(['keys', 'remove', keyId])).toMatchObject({ code: 0, json: { removed: { keyId } } });
  }, 120_000);

  it('--allow-unsigned applies an unchecked bundle, loudly', async () => {
    expect((await asA(['rollback', '--pid', String(server.pid), '--run-dir', runDir])).json.outcome).toBe('applied');
    const loose = copyBundle(p23, path.join(work, 'p23-loose'));
    fs.rmSync(path.join(loose, 'verdict.json'));
    fs.rmSync(path.join(loose, 'signature.json'));
    const r = await apply(loose, ['--allow-unsigned']);
    expect(r).toMatchObject({ code: 0, json: { outcome: 'applied', allowUnsigned: true, signature: { verified: false } } });
    expect(r.stderr).toMatch(/WARNING: --allow-unsigned.*local development only/);
    expect(await converse(server.port, ['VERSION'])).toEqual(['pollserver 3']);
  }, 60_000);
});
