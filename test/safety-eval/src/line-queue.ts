/** Reply lines as they arrive from a program, and a wait for the next one. */
export class LineQueue {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter?: () => void;

  /** Adds output text; complete lines (without `\r\n` / `\n`) become available. */
  push(text: string): void {
    this.buffered += text;
    for (let nl = this.buffered.indexOf('\n'); nl >= 0; nl = this.buffered.indexOf('\n')) {
      this.lines.push(this.buffered.slice(0, nl).replace(/\r$/, ''));
      this.buffered = this.buffered.slice(nl + 1);
    }
    this.wake();
  }

  /** Wakes a waiting `next` (the program died or its connection closed). */
  wake(): void {
    this.waiter?.();
  }

  /** The next line; undefined when none comes within `timeoutMs` or `alive()` turns false. */
  async next(timeoutMs: number, alive: () => boolean): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length === 0 && alive() && Date.now() < deadline)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    this.waiter = undefined;
    return this.lines.shift();
  }
}
