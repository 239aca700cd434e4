import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  approvalMessage,
  loadOrCreateSigningKey,
  loadTrustedKey,
  signApproval,
  verifyApproval,
} from './signing';

const approval = { patchId: 'p1', bundleSha256: 'a'.repeat(64), fromBuildId: 'b1', toBuildId: 'b2' };

describe('approval signatures (Ed25519)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsu-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('generates the key on first use (private key 0600), reuses it after, and the trusted public key verifies', () => {
    const key = loadOrCreateSigningKey(join(dir, 'k.pem'), join(dir, 'k.pub.pem'));
    expect(statSync(join(dir, 'k.pem')).mode & 0o777).toBe(0o600);
    expect(loadOrCreateSigningKey(join(dir, 'k.pem'), join(dir, 'k.pub.pem')).keyId).toBe(key.keyId);
    const sig = signApproval(key, approvalMessage(approval));
    const trusted = loadTrustedKey(join(dir, 'k.pub.pem'));
    expect(trusted.keyId).toBe(key.keyId);
    expect(verifyApproval(trusted.publicKey, approvalMessage(approval), sig)).toBe(true);
    // Any other bundle, build or patch id, or a damaged signature, does not verify.
    expect(verifyApproval(trusted.publicKey, approvalMessage({ ...approval, toBuildId: 'b3' }), sig)).toBe(
      false,
    );
    expect(
      verifyApproval(trusted.publicKey, approvalMessage({ ...approval, bundleSha256: 'b'.repeat(64) }), sig),
    ).toBe(false);
    expect(verifyApproval(trusted.publicKey, approvalMessage(approval), 'AAAA' + sig.slice(4))).toBe(false);
    expect(verifyApproval(trusted.publicKey, approvalMessage(approval), 'not base64 at all')).toBe(false);
  });

  it('creates the signing key once when several processes race for it', async () => {
    const { fork } = await import('node:child_process');
    const script = join(dir, 'race.js');
    // Each child waits for 'go', then creates (or loads) 40 fresh keys: with four children some
    // of them meet inside the same creation, which must still yield one key per path.
    writeFileSync(
      script,
      `require(${JSON.stringify(require.resolve('ts-node/register/transpile-only'))});` +
        `const { join } = require('node:path');` +
        `const { loadOrCreateSigningKey } = require(${JSON.stringify(join(__dirname, 'signing.ts'))});` +
        `process.send('ready');` +
        `process.on('message', () => { const ids = [];` +
        ` for (let i = 0; i < 40; i++) ids.push(loadOrCreateSigningKey(join(process.argv[2], String(i), 'k.pem'), join(process.argv[2], String(i), 'k.pub.pem')).keyId);` +
        ` process.send(ids); process.disconnect(); });`,
    );
    const children = Array.from({ length: 4 }, () => fork(script, [join(dir, 'race')], { stdio: 'pipe' }));
    const results = children.map(
      (child) =>
        new Promise<string[]>((resolve, reject) => {
          let err = '';
          child.stderr?.on('data', (d) => (err += d));
          child.on('message', (m) => Array.isArray(m) && resolve(m as string[]));
          child.on('exit', (code) => code && reject(new Error(`a racing process failed: ${err}`)));
        }),
    );
    await Promise.all(children.map((c) => new Promise((r) => c.once('message', r))));
    for (const c of children) c.send('go');
    const ids = await Promise.all(results);
    for (let i = 0; i < 40; i++) expect(new Set(ids.map((l) => l[i])).size).toBe(1);
    expect(readdirSync(join(dir, 'race', '7')).sort()).toEqual(['k.pem', 'k.pub.pem']);
  }, 60_000);

  it('says where the trusted key is expected when it is missing', () => {
    expect(() => loadTrustedKey(join(dir, 'missing.pem'))).toThrow(
      /no trusted checker key at .*missing.pem.*DSU_TRUSTED_KEY/,
    );
  });
});
