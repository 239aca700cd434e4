/** Keeps the head and the tail of a long text within `limit` bytes (compiler output). */
export class BoundedText {
  private head = '';
  private tail: string[] = [];
  private tailBytes = 0;
  private dropped = 0;

  constructor(private readonly limit: number) {}

  push(line: string): void {
    const l = line + '\n';
    if (this.head.length < this.limit / 4) {
      this.head += l;
      return;
    }
    this.tail.push(l);
    this.tailBytes += l.length;
    while (this.tailBytes > (this.limit * 3) / 4 && this.tail.length > 1) {
      const gone = this.tail.shift() as string;
      this.tailBytes -= gone.length;
      this.dropped += gone.length;
    }
  }

  get truncated(): boolean {
    return this.dropped > 0;
  }

  toString(): string {
    return (
      this.head +
      (this.dropped ? `[... ${this.dropped} bytes of output left out ...]\n` : '') +
      this.tail.join('')
    );
  }
}
