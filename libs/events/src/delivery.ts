import { DeadLetter, Subscription, runWithRetries } from './bus';
import { InvalidEventError, parseEvent } from './envelope';

export type DeadLetterSink = (letter: DeadLetter) => Promise<void>;

/**
 * Delivers one raw message to a subscription: validates the envelope, runs the handler with
 * bounded retries, and hands anything that cannot be processed to the dead-letter sink.
 * Never throws for a bad message, so the consumer goes on with the next one.
 */
export async function deliver(
  raw: Buffer,
  topic: string,
  key: string | null,
  sub: Subscription,
  deadLetter: DeadLetterSink,
): Promise<'handled' | 'dead-lettered'> {
  let error: Error | undefined;
  try {
    const event = parseEvent(raw);
    sub.validate?.(event, topic);
    error = await runWithRetries(() => sub.handler(event, topic));
  } catch (err) {
    if (!(err instanceof InvalidEventError)) throw err;
    error = err;
  }
  if (!error) return 'handled';
  const letter: DeadLetter = {
    topic,
    key,
    group: sub.group,
    error: error.message,
    payload: raw.toString('utf8'),
    failedAt: new Date().toISOString(),
  };
  await deadLetter(letter);
  sub.onDeadLetter?.(letter);
  return 'dead-lettered';
}
