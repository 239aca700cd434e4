export { startTracing, stopTracing, tracesEndpoint, type Tracing } from './tracing';
export { inSpan, currentTraceparent, tracedSubscription } from './spans';
