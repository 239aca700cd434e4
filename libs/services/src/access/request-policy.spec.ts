import { gatewayAccessFromEnv } from './gateway-access.config';
import { checkContentType, checkHost, checkOrigin, hostName } from './request-policy';

describe('request policy', () => {
  const cfg = gatewayAccessFromEnv({});

  it('takes the host name without the port, IPv6 included', () => {
    expect(hostName('LOCALHOST:7400')).toBe('localhost');
    expect(hostName('[::1]:7400')).toBe('[::1]');
    expect(hostName('localhost.')).toBe('localhost');
  });

  it('admits the loopback names, the bind address and the configured hosts, or everything with *', () => {
    for (const host of ['localhost:7400', '127.0.0.1', '[::1]:1'])
      expect(checkHost({ host }, cfg)).toBeNull();
    expect(checkHost({ host: 'dsu.internal' }, cfg)).toMatchObject({ status: 403 });
    expect(checkHost({}, cfg)).toMatchObject({ status: 400 });
    const bound = gatewayAccessFromEnv({
      DSU_BIND: '10.1.2.3',
      DSU_GATEWAY_ALLOWED_HOSTS: 'dsu.internal, GW.example',
    });
    for (const host of ['10.1.2.3:7400', 'dsu.internal', 'gw.example:80'])
      expect(checkHost({ host }, bound)).toBeNull();
    expect(checkHost({ host: '[fd00::1]:7400' }, gatewayAccessFromEnv({ DSU_BIND: 'fd00::1' }))).toBeNull();
    expect(
      checkHost({ host: 'any.example' }, gatewayAccessFromEnv({ DSU_GATEWAY_ALLOWED_HOSTS: '*' })),
    ).toBeNull();
  });

  it('admits no Origin, the same origin and the configured origins only', () => {
    expect(checkOrigin({ host: '127.0.0.1:7400' }, cfg)).toBeNull();
    expect(checkOrigin({ host: '127.0.0.1:7400', origin: 'http://127.0.0.1:7400' }, cfg)).toBeNull();
    expect(checkOrigin({ host: '127.0.0.1:7400', origin: 'http://127.0.0.1:7401' }, cfg)).toMatchObject({
      status: 403,
    });
    expect(checkOrigin({ host: '127.0.0.1:7400', origin: 'null' }, cfg)).toMatchObject({ status: 403 });
    const ui = gatewayAccessFromEnv({ DSU_GATEWAY_ALLOWED_ORIGINS: 'https://ops.example.com/' });
    expect(checkOrigin({ host: 'x', origin: 'https://ops.example.com' }, ui)).toBeNull();
  });

  it('wants exactly the declared media type, and no body where none is declared', () => {
    expect(
      checkContentType({ 'content-type': 'application/json; charset=utf-8' }, 'application/json'),
    ).toBeNull();
    expect(checkContentType({ 'content-type': 'text/plain' }, 'application/json')).toMatchObject({
      status: 415,
    });
    expect(checkContentType({}, 'application/gzip')).toMatchObject({ status: 415 });
    expect(checkContentType({}, undefined)).toBeNull();
    expect(checkContentType({ 'content-length': '3' }, undefined)).toMatchObject({ status: 415 });
  });

  it('refuses bad settings with what is wrong', () => {
    expect(() => gatewayAccessFromEnv({ DSU_GATEWAY_READS: 'public' })).toThrow(/'open' or 'token'/);
    expect(() => gatewayAccessFromEnv({ DSU_GATEWAY_ALLOWED_ORIGINS: 'not an origin' })).toThrow(
      /not an origin like/,
    );
  });
});
