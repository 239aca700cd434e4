/**
 * Measures analyzeUnit on a large generated unit (many system headers + N generated functions).
 * Usage: TS_NODE_PROJECT=libs/c-frontend/tsconfig.json npx ts-node --transpile-only \
 *          libs/c-frontend/scripts/measure-large.ts <functions | path/to/unit.c> <memory|stream|auto> [flags...]
 */
import { dirname, resolve } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeUnit } from '../src/index';

const HEADERS = `stdio stdlib string strings pthread signal time unistd fcntl errno math ctype dirent
  locale wchar wctype setjmp stdatomic stdint inttypes limits float assert search glob regex netdb
  poll sys/socket sys/epoll sys/stat sys/mman sys/wait sys/time sys/resource sys/uio sys/un sys/ioctl
  netinet/in netinet/tcp arpa/inet termios`.split(/\s+/);

function generate(n: number): string {
  const out = HEADERS.map((h) => `#include <${h}.h>`);
  out.push('struct rec { int id; char name[32]; double score; struct rec *next; };');
  out.push('static int total;');
  for (let i = 0; i < n; i++) {
    out.push(
      `static int f${i}(struct rec *r, int k) {`,
      `  int acc = k;`,
      `  for (int j = 0; j < r->id; j++) { acc += (int)strlen(r->name) * j; if (acc > 1000) acc -= 7; }`,
      `  r->score = acc * 0.5 + ${i};`,
      `  total += acc;`,
      `  return ${i > 0 ? `f${i - 1}(r, acc % 17)` : 'acc'} + snprintf(r->name, sizeof r->name, "%d", acc);`,
      `}`,
    );
  }
  out.push(`int main(void) { struct rec r = { 3, "x", 0, 0 }; return f${n - 1}(&r, 1) > 0; }`);
  return out.join('\n') + '\n';
}

async function main() {
  const arg = process.argv[2] ?? '2000';
  const mode = process.argv[3] ?? 'auto';
  const extra = process.argv.slice(4);
  const dir = mkdtempSync(join(tmpdir(), 'cfe-large-'));
  const given = /^\d+$/.test(arg) ? undefined : resolve(arg);
  if (!given) writeFileSync(join(dir, 'big.c'), generate(Number(arg)));
  let peakRss = 0;
  let peakHeap = 0;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const t0 = Date.now();
  try {
    const u = await analyzeUnit({
      source: given ?? 'big.c',
      flags: ['-std=gnu11', '-D_GNU_SOURCE', ...extra],
      cwd: given ? dirname(given) : dir,
      forceStreaming: mode === 'stream',
      streamThresholdBytes: mode === 'memory' ? 2 ** 29 - 64 : undefined,
    });
    const lines = u.preprocessed.toString('latin1').split('\n').length;
    console.log(
      JSON.stringify({
        functions: u.functions.length,
        iLines: lines,
        iBytes: u.preprocessed.length,
        ...u.stats,
        totalMs: Date.now() - t0,
        peakRssMB: Math.round(peakRss / 2 ** 20),
        peakHeapMB: Math.round(peakHeap / 2 ** 20),
      }),
    );
  } finally {
    clearInterval(timer);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message.slice(0, 2000) : e);
  process.exit(1);
});
