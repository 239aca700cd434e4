import { MigrationInterface, QueryRunner, Table, TableColumnOptions, TableIndex } from 'typeorm';

const v = (name: string, length: number, nullable = false): TableColumnOptions => ({
  name,
  type: 'varchar',
  length: String(length),
  isNullable: nullable,
});

/** The gateway's API tokens (hashed) and the audit log of who submitted, approved, rolled out. */
export class CreateAccess1796500000000 implements MigrationInterface {
  name = 'CreateAccess1796500000000';

  async up(q: QueryRunner): Promise<void> {
    // Portable DDL through the Table API: the same migration runs on SQLite and PostgreSQL.
    await q.createTable(
      new Table({
        name: 'api_tokens',
        columns: [
          { ...v('id', 32), isPrimary: true },
          v('name', 128),
          v('token_sha256', 64),
          { name: 'scopes', type: 'text' },
          v('created_at', 32),
          v('created_by', 128),
          v('last_used_at', 32, true),
          v('revoked_at', 32, true),
        ],
      }),
    );
    await q.createIndex(
      'api_tokens',
      new TableIndex({ name: 'api_tokens_sha256', columnNames: ['token_sha256'], isUnique: true }),
    );
    await q.createTable(
      new Table({
        name: 'audit_log',
        columns: [
          {
            name: 'seq',
            type: 'integer',
            isPrimary: true,
            isGenerated: true,
            generationStrategy: 'increment',
          },
          v('at', 32),
          v('actor_kind', 16),
          v('actor_id', 128),
          v('actor_name', 128),
          v('action', 64),
          v('program', 128, true),
          v('target', 256, true),
          v('outcome', 32),
          { name: 'detail', type: 'text' },
        ],
      }),
    );
    await q.createIndex(
      'audit_log',
      new TableIndex({ name: 'audit_log_program', columnNames: ['program', 'seq'] }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('audit_log');
    await q.dropTable('api_tokens');
  }
}
