import { buildProgram } from './program';
import { GatewayClient } from './commands/gateway-client';

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
});
