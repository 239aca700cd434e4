import { Controller, type MessageEvent, Sse } from '@nestjs/common';
import { ApiOperation, ApiProduces } from '@nestjs/swagger';
import type { Observable } from 'rxjs';
import { RequireScope } from '../access/decorators';
import { DashboardFeed } from './dashboard-feed';

/** `GET /stream`: the dashboard's live feed as server-sent events (a read: token with `read`). */
@Controller('stream')
@RequireScope('read')
export class StreamController {
  constructor(private readonly feed: DashboardFeed) {}

  @Sse()
  @ApiProduces('text/event-stream')
  @ApiOperation({
    summary:
      "Live feed for the dashboard (text/event-stream): events 'rollouts' (the newest 20 with targets and results), 'fleet' (hosts, processes, stale flags) and 'programs' (versions and patch states), each sent at connect and whenever it changes; 'ping' every 15 s",
  })
  stream(): Observable<MessageEvent> {
    return this.feed.stream();
  }
}
