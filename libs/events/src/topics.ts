/** Topic names of the pipeline (DESIGN.md §2). Event `type` = topic + `.v<schema version>`. */
export const Topics = {
  buildRequested: 'dsu.build.requested',
  buildCompleted: 'dsu.build.completed',
  buildFailed: 'dsu.build.failed',
  patchRequested: 'dsu.patch.requested',
  patchGenerated: 'dsu.patch.generated',
  patchFailed: 'dsu.patch.failed',
  patchVerdict: 'dsu.patch.verdict',
  rolloutRequested: 'dsu.rollout.requested',
  updateCommand: 'dsu.update.command',
  updateResult: 'dsu.update.result',
  agentHeartbeat: 'dsu.agent.heartbeat',
  deadLetter: 'dsu.dead-letter',
} as const;

export type Topic = (typeof Topics)[keyof typeof Topics];

export const ALL_TOPICS: readonly Topic[] = Object.values(Topics);

/** Splits `dsu.patch.generated.v1` into its topic and schema version. */
export function parseEventType(type: string): { topic: string; version: number } | undefined {
  const m = /^(.+)\.v([1-9][0-9]*)$/.exec(type);
  return m ? { topic: m[1], version: Number(m[2]) } : undefined;
}
