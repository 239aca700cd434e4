/**
 * A server started for tests and shared by every suite in the process: started on first use,
 * stopped when the last user releases it, so suites in one Jest worker do not each pay a start.
 */
export class SharedServer<T extends { stop(): Promise<void> }> {
  private server?: Promise<T>;
  private users = 0;

  constructor(private readonly start: () => Promise<T>) {}

  async acquire(): Promise<T> {
    this.users++;
    this.server ??= this.start();
    try {
      return await this.server;
    } catch (err) {
      this.users--;
      this.server = undefined;
      throw err;
    }
  }

  async release(): Promise<void> {
    if (--this.users > 0 || !this.server) return;
    const s = this.server;
    this.server = undefined;
    await (await s).stop();
  }
}
