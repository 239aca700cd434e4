import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * Update results keep what a data update transformed (instances, and how long it took), so the
 * registry and the dashboard can show it per update. Null for code-only patches and older rows.
 */
export class ResultInstances1796800000000 implements MigrationInterface {
  name = 'ResultInstances1796800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('update_results', [
      new TableColumn({ name: 'instances', type: 'integer', isNullable: true }),
      new TableColumn({ name: 'transform_us', type: 'integer', isNullable: true }),
    ]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('update_results', 'transform_us');
    await q.dropColumn('update_results', 'instances');
  }
}
