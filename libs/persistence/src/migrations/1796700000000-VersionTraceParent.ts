import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * Versions keep the trace context of their submit (when tracing was on), so a rollout to the
 * version continues that trace: one trace follows a version from submit to its last process.
 */
export class VersionTraceParent1796700000000 implements MigrationInterface {
  name = 'VersionTraceParent1796700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn(
      'versions',
      new TableColumn({ name: 'trace_parent', type: 'varchar', length: '128', isNullable: true }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('versions', 'trace_parent');
  }
}
