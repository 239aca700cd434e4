import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * Rollouts to processes on any older build: a target can wait for a patch requested on demand
 * (no patch id yet) or fail with a reason when that patch fails or is rejected. Existing rows were
 * all commanded when planned; those with a result are reported.
 */
export class RolloutTargetsWaitForPatches1795769237000 implements MigrationInterface {
  name = 'RolloutTargetsWaitForPatches1795769237000';

  async up(q: QueryRunner): Promise<void> {
    await q.changeColumn(
      'rollout_targets',
      'patch_id',
      new TableColumn({ name: 'patch_id', type: 'varchar', length: '128', isNullable: true }),
    );
    await q.addColumns('rollout_targets', [
      new TableColumn({
        name: 'state',
        type: 'varchar',
        length: '16',
        isNullable: false,
        default: "'commanded'",
      }),
      new TableColumn({ name: 'from_build_id', type: 'varchar', length: '128', isNullable: true }),
      new TableColumn({ name: 'to_build_id', type: 'varchar', length: '128', isNullable: true }),
      new TableColumn({ name: 'reason', type: 'text', isNullable: true }),
    ]);
    const yes = q.connection.options.type === 'postgres' ? 'true' : '1';
    await q.query(`UPDATE rollout_targets SET state = 'reported' WHERE reported = ${yes}`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM rollout_targets WHERE patch_id IS NULL`);
    await q.dropColumns('rollout_targets', ['reason', 'to_build_id', 'from_build_id', 'state']);
    await q.changeColumn(
      'rollout_targets',
      'patch_id',
      new TableColumn({ name: 'patch_id', type: 'varchar', length: '128', isNullable: false }),
    );
  }
}
