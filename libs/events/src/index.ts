export { Topics, ALL_TOPICS, parseEventType, type Topic } from './topics';
export {
  createEvent,
  parseEvent,
  serializeEvent,
  cloudEventSchema,
  InvalidEventError,
  type CloudEvent,
  type NewEvent,
} from './envelope';
export {
  type EventBus,
  type EventHandler,
  type Subscription,
  type DeadLetter,
  type ConsumerLag,
  MAX_HANDLER_ATTEMPTS,
} from './bus';
export { InProcessBus } from './in-process-bus';
export { KafkaBus } from './kafka-bus';
export type { KafkaStartup } from './kafka-topics';
export { kafkaOptionsFromEnv, type KafkaBusOptions } from './kafka-config';
export {
  payloadSchemas,
  validatePayload,
  currentType,
  type BuildRef,
  type Finding,
  type BuildRequestedV1,
  type BuildCompletedV1,
  type BuildFailedV1,
  type PatchRequestedV1,
  type PatchGeneratedV1,
  type PatchFailedV1,
  type PatchVerdictV1,
  type RolloutRequestedV1,
  type UpdateCommandV1,
  type UpdateResultV1,
  type UpdateResultsV2,
  type UpdateOutcomeV1,
  type InventoryProcessV1,
  type AgentHeartbeatV1,
} from './payloads';
