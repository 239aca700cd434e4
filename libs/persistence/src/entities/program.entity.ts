import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** A C program registered with the pipeline; versions, patches and rollouts hang off it. */
@Entity({ name: 'programs' })
export class ProgramEntity {
  /** Stable program id chosen by the user (also the Kafka key of the program's events). */
  @PrimaryColumn({ type: 'varchar', length: 128 })
  id!: string;

  @Column({ type: 'varchar', length: 512, default: '' })
  description!: string;

  @CreateDateColumn({ name: 'created_at' })
  createdAt!: Date;
}
