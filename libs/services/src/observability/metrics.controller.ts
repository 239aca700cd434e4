import type { ServerResponse } from 'node:http';
import { Controller, Get, Res } from '@nestjs/common';
import { ApiOkResponse, ApiProduces } from '@nestjs/swagger';
import { processMetrics } from '@dsu/metrics';
import { RequireScope } from '../access/decorators';

/**
 * `GET /metrics`: the process's series in Prometheus' text format, on every service. On a process
 * with the gateway it is a read like the others (a scraper sends a token with the `read` scope,
 * e.g. Prometheus' `authorization.credentials_file`, unless DSU_GATEWAY_READS=open); the other
 * services have no token check and listen on loopback unless DSU_BIND says otherwise.
 */
@Controller('metrics')
@RequireScope('read')
export class MetricsController {
  @Get()
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text exposition format 0.0.4', schema: { type: 'string' } })
  async metrics(@Res() res: ServerResponse): Promise<void> {
    const { contentType, body } = await processMetrics.exposition();
    res.setHeader('Content-Type', contentType);
    res.end(body);
  }
}
