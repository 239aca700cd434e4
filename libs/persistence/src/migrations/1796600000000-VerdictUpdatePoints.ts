import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * Verdicts keep the update points the safety analysis allows and denies (with the denying rules),
 * so the registry can show where a patch may apply. Verdicts stored before have none (null).
 */
export class VerdictUpdatePoints1796600000000 implements MigrationInterface {
  name = 'VerdictUpdatePoints1796600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumn('verdicts', new TableColumn({ name: 'update_points', type: 'text', isNullable: true }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('verdicts', 'update_points');
  }
}
