export { Outbox, newId, inTransaction, type OutboxTx, type Log } from './outbox';
