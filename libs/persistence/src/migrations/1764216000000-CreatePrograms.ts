import { MigrationInterface, QueryRunner, Table } from 'typeorm';

export class CreatePrograms1764216000000 implements MigrationInterface {
  name = 'CreatePrograms1764216000000';

  async up(q: QueryRunner): Promise<void> {
    // Portable DDL through the Table API: the same migration runs on SQLite and PostgreSQL.
    await q.createTable(
      new Table({
        name: 'programs',
        columns: [
          { name: 'id', type: 'varchar', length: '128', isPrimary: true },
          { name: 'description', type: 'varchar', length: '512', default: "''" },
          { name: 'created_at', type: q.connection.options.type === 'postgres' ? 'timestamptz' : 'datetime', default: 'CURRENT_TIMESTAMP' },
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('programs');
  }
}
