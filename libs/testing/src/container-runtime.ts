let cached: Promise<boolean> | undefined;

/**
 * Whether a container runtime (Docker, Podman, ...) answers, so Testcontainers can be used.
 * Answered once per process; a missing engine is the normal case on CI machines without one.
 */
export function containerRuntimeAvailable(): Promise<boolean> {
  if (process.env.DSU_TEST_NO_CONTAINERS === '1') return Promise.resolve(false);
  cached ??= (async () => {
    try {
      const { getContainerRuntimeClient } = await import('testcontainers');
      const client = await getContainerRuntimeClient();
      return Boolean(client.info.containerRuntime);
    } catch {
      return false;
    }
  })();
  return cached;
}
