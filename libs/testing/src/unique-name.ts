import { randomBytes } from 'node:crypto';

/** A name unique to this suite run, safe as a Kafka topic prefix and as a PostgreSQL identifier. */
export function uniqueName(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `${clean}_${process.pid}_${randomBytes(4).toString('hex')}`;
}
