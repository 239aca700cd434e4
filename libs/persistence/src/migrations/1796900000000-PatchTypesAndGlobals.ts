import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * Patches keep the structs whose layout they change and the globals they change (from the
 * manifest), so the registry can show what a data update does. Null for patches stored before.
 */
export class PatchTypesAndGlobals1796900000000 implements MigrationInterface {
  name = 'PatchTypesAndGlobals1796900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.addColumns('patches', [
      new TableColumn({ name: 'types', type: 'text', isNullable: true }),
      new TableColumn({ name: 'globals', type: 'text', isNullable: true }),
    ]);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn('patches', 'globals');
    await q.dropColumn('patches', 'types');
  }
}
