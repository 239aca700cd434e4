import { Inject, Injectable, type MessageEvent, type OnModuleDestroy } from '@nestjs/common';
import { Observable } from 'rxjs';
import {
  type InventoryView,
  type RolloutView,
  type RunningServices,
  staleAfter,
  type VersionStates,
} from '@dsu/pipeline';
import { RUNNING_SERVICES } from '../pipeline.module';

/** What the dashboard is told about: each topic's latest state, sent when it changes. */
export interface FeedSnapshot {
  rollouts: RolloutView[];
  fleet: { staleAfterMs: number; hosts: InventoryView[] };
  programs: VersionStates[];
}

export type FeedTopic = keyof FeedSnapshot;
const TOPICS: FeedTopic[] = ['rollouts', 'fleet', 'programs'];

/** How many rollouts the live feed carries (the newest); older ones are read from GET /rollouts. */
export const FEED_ROLLOUTS = 20;

/**
 * The dashboard's live feed (server-sent events). While at least one page is connected, the
 * registry is read once a second (`DSU_DASHBOARD_REFRESH_MS`) and each topic whose state changed
 * is pushed to every page; with no page open nothing runs. Reading the database rather than
 * listening to the gateway's own projection keeps every gateway replica's pages current, whichever
 * replica projected the event.
 */
@Injectable()
export class DashboardFeed implements OnModuleDestroy {
  private readonly pages = new Set<(e: MessageEvent) => void>();
  private readonly last = new Map<FeedTopic, string>();
  private timer?: NodeJS.Timeout;
  private reading?: Promise<void>;

  constructor(@Inject(RUNNING_SERVICES) private readonly running: RunningServices) {}

  /** The stream of one page: every topic at once, then each change, and a ping every 15 s. */
  stream(): Observable<MessageEvent> {
    return new Observable<MessageEvent>((page) => {
      const send = (e: MessageEvent) => page.next(e);
      this.pages.add(send);
      void this.snapshot()
        .then((s) => TOPICS.forEach((t) => send({ type: t, data: s[t] })))
        .catch((err) => send({ type: 'problem', data: { error: (err as Error).message } }));
      const ping = setInterval(() => send({ type: 'ping', data: {} }), 15_000);
      this.timer ??= setInterval(() => void this.tick(), refreshMs());
      return () => {
        clearInterval(ping);
        this.pages.delete(send);
        if (this.pages.size === 0) this.stop();
      };
    });
  }

  onModuleDestroy(): void {
    this.stop();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.last.clear();
  }

  /** One read of the registry; pushes the topics that changed since the last one. */
  private tick(): Promise<void> {
    // A slow database must not stack reads up: skip a tick while the previous one runs.
    this.reading ??= this.snapshot()
      .then((s) => {
        for (const t of TOPICS) {
          const json = JSON.stringify(s[t]);
          if (this.last.get(t) === json) continue;
          this.last.set(t, json);
          for (const send of this.pages) send({ type: t, data: s[t] });
        }
      })
      .catch(() => undefined)
      .finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** The current state of every topic. */
  async snapshot(): Promise<FeedSnapshot> {
    const registry = this.running.registry;
    if (!registry) throw new Error('the dashboard feed runs only where the gateway runs');
    const staleAfterMs = staleAfter(this.running.infra.config.heartbeatMs);
    const [rollouts, inventory, programs] = await Promise.all([
      registry.listRollouts({ newest: FEED_ROLLOUTS }),
      registry.listInventory(),
      registry.listVersionStates(),
    ]);
    return { rollouts, fleet: { staleAfterMs, hosts: inventory }, programs };
  }
}

function refreshMs(): number {
  const v = Number(process.env.DSU_DASHBOARD_REFRESH_MS ?? 1000);
  return Number.isFinite(v) && v >= 100 ? v : 1000;
}
