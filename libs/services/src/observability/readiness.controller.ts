import { Controller, Get, Inject } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { RunningServices } from '@dsu/pipeline';
import { Public } from '@dsu/service-kit';
import { RUNNING_SERVICES } from '../pipeline.module';

/**
 * Liveness and readiness in the Nest convention (@nestjs/terminus), beside the plain `/health`:
 * `GET /health/live` answers while the process serves HTTP; `GET /health/ready` answers 200 only
 * while the database and the broker answer now (503 with which one does not, for a load balancer
 * or a Kubernetes readiness probe). Open like `/health`: probes carry no token.
 */
@Public()
@Controller('health')
export class ReadinessController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(RUNNING_SERVICES) private readonly running: RunningServices,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([async () => this.indicators.check('process').up({ pid: process.pid })]);
  }

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.database(), () => this.broker()]);
  }

  private async database() {
    const { infra } = this.running;
    const session = this.indicators.check('database');
    try {
      await infra.ds.query('SELECT 1');
      return session.up({ kind: infra.database });
    } catch (err) {
      return session.down({ kind: infra.database, message: (err as Error).message });
    }
  }

  private async broker() {
    const { infra } = this.running;
    const session = this.indicators.check('broker');
    try {
      await infra.bus.checkReachable?.();
      return session.up({ kind: infra.transport });
    } catch (err) {
      return session.down({ kind: infra.transport, message: (err as Error).message });
    }
  }
}
