import { Controller, Get, Inject } from '@nestjs/common';
import { Public } from './public.decorator';
import { SERVICE_NAME } from './service-identity';

/** `GET /health`: open to anyone (probes carry no token), on every service. */
@Public()
@Controller('health')
export class HealthController {
  private readonly startedAt = Date.now();

  constructor(@Inject(SERVICE_NAME) private readonly service: string) {}

  @Get()
  health(): { status: 'ok'; service: string; uptimeMs: number } {
    return { status: 'ok', service: this.service, uptimeMs: Date.now() - this.startedAt };
  }
}
