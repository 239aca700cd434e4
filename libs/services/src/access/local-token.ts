import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { ensureLocalToken, localTokenPath } from '@dsu/access';
import { jsonLog, type RunningServices } from '@dsu/pipeline';
import { RUNNING_SERVICES } from '../pipeline.module';

/** Injection token of the environment the gateway was configured from. */
export const GATEWAY_ENV = Symbol('GATEWAY_ENV');

/**
 * On start, before the gateway listens: makes sure the local user has an admin token in
 * `$DSU_HOME/token` (mode 0600; `DSU_TOKEN_FILE` moves it, `DSU_LOCAL_TOKEN=off` skips it), so
 * `dsu up` and then `dsu submit` on the same machine need no configuration.
 */
@Injectable()
export class LocalTokenBootstrap implements OnApplicationBootstrap {
  constructor(
    @Inject(RUNNING_SERVICES) private readonly running: RunningServices,
    @Inject(GATEWAY_ENV) private readonly env: NodeJS.ProcessEnv,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.env.DSU_LOCAL_TOKEN === 'off') return;
    const r = await ensureLocalToken(this.running.infra.ds, localTokenPath(this.env));
    if (r.created)
      jsonLog('gateway-access')('info', 'local admin token written', { path: r.path, tokenId: r.id });
  }
}
