import { MigrationInterface, QueryRunner, Table, TableColumnOptions, TableIndex } from 'typeorm';

const v = (name: string, length: number, nullable = false): TableColumnOptions => ({
  name,
  type: 'varchar',
  length: String(length),
  isNullable: nullable,
});
const text = (name: string, nullable = false): TableColumnOptions => ({
  name,
  type: 'text',
  isNullable: nullable,
});
const int = (name: string, nullable = false): TableColumnOptions => ({
  name,
  type: 'integer',
  isNullable: nullable,
});
const pk = (c: TableColumnOptions): TableColumnOptions => ({ ...c, isPrimary: true });

/** The pipeline's tables: outbox, processed events, and the gateway's registry projection. */
export class CreatePipeline1764230000000 implements MigrationInterface {
  name = 'CreatePipeline1764230000000';

  async up(q: QueryRunner): Promise<void> {
    // Portable DDL through the Table API: the same migration runs on SQLite and PostgreSQL.
    await q.createTable(
      new Table({
        name: 'outbox',
        columns: [
          pk(v('id', 64)),
          v('producer', 64),
          v('topic', 128),
          v('message_key', 256),
          text('event'),
          int('seq'),
          v('created_at', 32),
          v('sent_at', 32, true),
        ],
      }),
    );
    await q.createIndex(
      'outbox',
      new TableIndex({ name: 'outbox_pending', columnNames: ['producer', 'sent_at'] }),
    );
    await q.createTable(
      new Table({
        name: 'processed_events',
        columns: [pk(v('consumer', 64)), pk(v('event_id', 64)), v('type', 128), v('processed_at', 32)],
      }),
    );
    await q.createTable(
      new Table({
        name: 'versions',
        columns: [
          pk(v('program', 128)),
          pk(v('version', 128)),
          v('status', 16),
          v('source_sha256', 64),
          v('bin', 256, true),
          text('update_points'),
          v('build_id', 128, true),
          v('executable', 256, true),
          v('executable_sha256', 64, true),
          v('model_sha256', 64, true),
          v('build_dir_sha256', 64, true),
          text('error', true),
          text('diagnostics', true),
          int('duration_ms', true),
          int('seq'),
          v('requested_at', 32),
          v('built_at', 32, true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'patches',
        columns: [
          pk(v('request_id', 64)),
          v('program', 128),
          v('from_version', 128),
          v('to_version', 128),
          v('from_build_id', 128),
          v('to_build_id', 128),
          v('status', 16),
          v('patch_id', 128, true),
          v('bundle_sha256', 64, true),
          text('functions', true),
          text('error', true),
          text('reasons', true),
          v('requested_at', 32),
          v('generated_at', 32, true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'verdicts',
        columns: [
          pk(v('patch_id', 128)),
          v('program', 128),
          v('bundle_sha256', 64),
          v('verdict', 16),
          text('findings'),
          text('signature', true),
          v('key_id', 128, true),
          v('checked_at', 32),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'rollouts',
        columns: [
          pk(v('id', 64)),
          v('program', 128),
          v('version', 128),
          v('status', 16),
          text('notes'),
          v('requested_at', 32),
          v('completed_at', 32, true),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'rollout_targets',
        columns: [
          pk(v('rollout_id', 64)),
          pk(v('host', 128)),
          pk(int('pid')),
          v('patch_id', 128),
          { name: 'reported', type: 'boolean' },
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'update_results',
        columns: [
          pk(v('rollout_id', 64)),
          pk(v('host', 128)),
          pk(int('pid')),
          v('program', 128),
          v('patch_id', 128, true),
          v('outcome', 16),
          int('pause_us'),
          v('update_point', 256, true),
          text('reasons'),
          v('build_id', 128, true),
          v('event_id', 64),
          v('reported_at', 32),
        ],
      }),
    );
    await q.createTable(
      new Table({
        name: 'inventory',
        columns: [pk(v('host', 128)), v('run_dir', 1024), text('processes'), v('seen_at', 32)],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'inventory',
      'update_results',
      'rollout_targets',
      'rollouts',
      'verdicts',
      'patches',
      'versions',
      'processed_events',
      'outbox',
    ])
      await q.dropTable(t);
  }
}
