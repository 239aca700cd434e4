// The API's shapes, declared once in the libs (type-only imports: nothing of them is bundled).
import type { FeedSnapshot } from '@dsu/services';

export type Feed = FeedSnapshot;
export type Topic = keyof Feed;
export type {
  InventoryView,
  PatchView,
  ResultView,
  RolloutView,
  VerdictView,
  VersionView,
} from '@dsu/pipeline';
