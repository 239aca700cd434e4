import { randomUUID } from 'node:crypto';
import { context, propagation } from '@opentelemetry/api';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { parseEventType } from './topics';

/**
 * CloudEvents 1.0 structured-mode envelope with the correlation/causation extensions and the
 * distributed-tracing extension (W3C `traceparent` / `tracestate`, present while tracing is on).
 */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  datacontenttype: 'application/json';
  correlationid: string;
  causationid?: string;
  traceparent?: string;
  tracestate?: string;
  data: T;
}

export const cloudEventSchema = {
  $id: 'https://dsu.dev/schemas/cloudevent.json',
  type: 'object',
  required: ['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'correlationid', 'data'],
  properties: {
    specversion: { const: '1.0' },
    id: { type: 'string', minLength: 1 },
    source: { type: 'string', minLength: 1 },
    type: { type: 'string', pattern: '^dsu\\.[a-z.-]+\\.v[1-9][0-9]*$' },
    time: { type: 'string', format: 'date-time' },
    subject: { type: 'string' },
    datacontenttype: { const: 'application/json' },
    correlationid: { type: 'string', minLength: 1 },
    causationid: { type: 'string', minLength: 1 },
    // Read leniently by the tracer (a malformed one starts no span); bounded, never fatal.
    traceparent: { type: 'string', maxLength: 128 },
    tracestate: { type: 'string', maxLength: 512 },
    data: {},
  },
  additionalProperties: true,
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
addFormats(ajv);
const validateEnvelope = ajv.compile(cloudEventSchema);

/** A message that is not a valid event; consumers send it to the dead-letter topic. */
export class InvalidEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

export interface NewEvent<T> {
  type: string;
  source: string;
  data: T;
  subject?: string;
  /** The event this one is a reaction to: its id becomes the causation id, its correlation id is kept. */
  causedBy?: Pick<CloudEvent, 'id' | 'correlationid'>;
}

/**
 * A new event. While tracing is on (a propagator is registered) it carries the active span's
 * trace context, so the consumers' spans join the producer's trace; otherwise nothing is added.
 */
export function createEvent<T>(e: NewEvent<T>): CloudEvent<T> {
  const id = randomUUID();
  const trace: { traceparent?: string; tracestate?: string } = {};
  propagation.inject(context.active(), trace);
  if (!parseEventType(e.type)) throw new InvalidEventError(`event type '${e.type}' must look like dsu.<topic>.v<N>`);
  return {
    specversion: '1.0',
    id,
    source: e.source,
    type: e.type,
    time: new Date().toISOString(),
    ...(e.subject !== undefined ? { subject: e.subject } : {}),
    datacontenttype: 'application/json',
    correlationid: e.causedBy?.correlationid ?? id,
    ...(e.causedBy ? { causationid: e.causedBy.id } : {}),
    ...(trace.traceparent ? { traceparent: trace.traceparent } : {}),
    ...(trace.tracestate ? { tracestate: trace.tracestate } : {}),
    data: e.data,
  };
}

/** Parses and validates a serialized envelope; throws InvalidEventError saying what is wrong. */
export function parseEvent(raw: Buffer | string): CloudEvent {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString());
  } catch (err) {
    throw new InvalidEventError(`message is not JSON: ${(err as Error).message}`);
  }
  if (!validateEnvelope(value)) {
    const why = (validateEnvelope.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new InvalidEventError(`message is not a valid CloudEvents 1.0 envelope: ${why}`);
  }
  return value as unknown as CloudEvent;
}

export function serializeEvent(event: CloudEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}
