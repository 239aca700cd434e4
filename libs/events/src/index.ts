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
export { type EventBus, type EventHandler, type Subscription, type DeadLetter, MAX_HANDLER_ATTEMPTS } from './bus';
export { InProcessBus } from './in-process-bus';
export { KafkaBus } from './kafka-bus';
export { kafkaOptionsFromEnv, type KafkaBusOptions } from './kafka-config';
