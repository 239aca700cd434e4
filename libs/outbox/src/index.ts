export { Outbox, newId, type OutboxTx, type Log } from './outbox';
