import { buildProgram } from './program';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayClient, tokenFromEnv } from './commands/gateway-client';

describe('dsu command', () => {
  it('lists the local and the remote commands in --help', () => {
    const help = buildProgram().helpInformation();
    for (const c of [
      'build',
      'patch',
      'check',
      'apply',
      'up',
      'submit',
      'install',
      'rollout',
      'versions',
      'rollouts',
      'token',
      'audit',
      'keys',
    ])
      expect(help).toMatch(new RegExp(`\\n  ${c} `));
  });

  it('says how to start a gateway when none answers', async () => {
    const gw = new GatewayClient('http://127.0.0.1:9'); // discard port: nothing listens
    await expect(gw.request('GET', '/programs')).rejects.toThrow(
      /no gateway answers at http:\/\/127.0.0.1:9 .*start one with 'dsu up' or set DSU_GATEWAY/,
    );
  });

  it('takes the gateway from DSU_GATEWAY, else the embedded default port', () => {
    expect(GatewayClient.fromEnv({ DSU_GATEWAY: 'http://10.0.0.1:8000/' }).url).toBe('http://10.0.0.1:8000');
    expect(GatewayClient.fromEnv({}).url).toBe('http://127.0.0.1:7400');
    expect(GatewayClient.fromEnv({ DSU_GATEWAY_PORT: '7500' }).url).toBe('http://127.0.0.1:7500');
  });

  it('finds its token in DSU_TOKEN, else in the file dsu up wrote under DSU_HOME', () => {
    const home = mkdtempSync(join(tmpdir(), 'dsu-cli-token-'));
    try {
      expect(tokenFromEnv({ DSU_HOME: home })).toBeUndefined();
      writeFileSync(join(home, 'token'), 'dsu_fromfile\n', { mode: 0o600 });
      expect(tokenFromEnv({ DSU_HOME: home })).toBe('dsu_fromfile');
      expect(tokenFromEnv({ DSU_HOME: home, DSU_TOKEN: 'dsu_fromenv' })).toBe('dsu_fromenv');
      writeFileSync(join(home, 'other'), 'dsu_other\n');
      expect(tokenFromEnv({ DSU_HOME: home, DSU_TOKEN_FILE: join(home, 'other') })).toBe('dsu_other');
      chmodSync(join(home, 'token'), 0o000);
      if (process.getuid?.() !== 0)
        expect(() => tokenFromEnv({ DSU_HOME: home })).toThrow(/cannot read the token file/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('sends the token as a bearer token', async () => {
    const http = await import('node:http');
    let seen: string | undefined;
    const server = http.createServer((req, res) => {
      seen = req.headers.authorization;
      res.setHeader('content-type', 'application/json');
      res.end('[]');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      await new GatewayClient(`http://127.0.0.1:${port}`, 'dsu_abc').request('GET', '/programs');
      expect(seen).toBe('Bearer dsu_abc');
    } finally {
      server.close();
    }
  });
});
