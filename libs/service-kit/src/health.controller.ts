import { Controller, Get, Inject } from '@nestjs/common';
import { SERVICE_NAME } from './service-identity';

@Controller('health')
export class HealthController {
  private readonly startedAt = Date.now();

  constructor(@Inject(SERVICE_NAME) private readonly service: string) {}

  @Get()
  health(): { status: 'ok'; service: string; uptimeMs: number } {
    return { status: 'ok', service: this.service, uptimeMs: Date.now() - this.startedAt };
  }
}
