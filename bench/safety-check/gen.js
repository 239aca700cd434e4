// Generates a synthetic C server of about `lines` lines for the safety-check benchmark: `files`
// units, each with a struct, ~25 functions that loop, call into other units (directly and through
// a table of handlers), touch struct fields and globals; main.c runs a poll() event loop with an
// update point. `variant` 2 changes some bodies and grows one struct, as a release would.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function unit(u, files, fnsPerFile, variant) {
  const out = [`#include <stdio.h>`, `#include <stdlib.h>`, `#include <string.h>`, `#include "app.h"`, ''];
  out.push(`long counter_${u};`, '');
  for (let f = 0; f < fnsPerFile; f++) {
    const name = `u${u}_f${f}`;
    const callee = `u${(u + 1 + (f % 3)) % files}_f${(f + 1) % fnsPerFile}`;
    const changed = variant === 2 && (u * fnsPerFile + f) % 37 === 0;
    out.push(`int ${name}(struct rec${u} *r, int n) {`);
    out.push(`    int acc = 0;`);
    out.push(`    for (int i = 0; i < n; i++) {`);
    out.push(`        acc += r->a * i + r->b;`);
    out.push(`        if (acc > 1000) acc -= r->c;`);
    out.push(`        r->b = (r->b + acc) % 97;`);
    out.push(`    }`);
    out.push(changed ? `    counter_${u} += acc * 2 + 1;` : `    counter_${u} += acc;`);
    out.push(`    if (n > 1 && f${f % 2 ? '_odd' : '_even'}(n)) {`);
    out.push(`        struct rec${(u + 1 + (f % 3)) % files} other;`);
    out.push(`        memset(&other, 0, sizeof other);`);
    out.push(`        other.a = acc % 13;`);
    out.push(`        acc += ${callee}(&other, n / 2);`);
    out.push(`    }`);
    out.push(`    return acc;`);
    out.push(`}`, '');
  }
  out.push(`int u${u}_handle(int n) {`, `    struct rec${u} r = { n, 1, 2 };`, `    return u${u}_f0(&r, n % 7);`, `}`, '');
  return out.join('\n');
}

function generate(dir, { lines = 10000, variant = 1 } = {}) {
  const files = 20;
  const fnsPerFile = Math.max(1, Math.round(lines / files / 17));
  fs.mkdirSync(dir, { recursive: true });
  const h = ['#ifndef APP_H', '#define APP_H', 'int f_odd(int n);', 'int f_even(int n);'];
  for (let u = 0; u < files; u++) {
    const grow = variant === 2 && u === 3 ? ' long d;' : '';
    h.push(`struct rec${u} { int a; int b; int c;${grow} };`, `extern long counter_${u};`, `int u${u}_handle(int n);`);
    for (let f = 0; f < fnsPerFile; f++) h.push(`int u${u}_f${f}(struct rec${u} *r, int n);`);
  }
  h.push('#endif', '');
  fs.writeFileSync(path.join(dir, 'app.h'), h.join('\n'));
  for (let u = 0; u < files; u++) fs.writeFileSync(path.join(dir, `u${u}.c`), unit(u, files, fnsPerFile, variant));
  const handlers = Array.from({ length: files }, (_, u) => `u${u}_handle`).join(', ');
  fs.writeFileSync(
    path.join(dir, 'main.c'),
    [
      '#include <poll.h>', '#include <stdio.h>', '#include <unistd.h>', '#include "app.h"', '',
      'int f_odd(int n) { return n % 2; }', 'int f_even(int n) { return n % 2 == 0; }', '',
      `static int (*const handlers[])(int) = { ${handlers} };`, '',
      'int main(void) {', '    struct pollfd p = { 0, POLLIN, 0 };', '    char buf[64];', '    for (;;) {',
      '        if (poll(&p, 1, -1) < 0) return 1;', '        ssize_t n = read(0, buf, sizeof buf);', '        if (n <= 0) return 0;',
      `        printf("%d\\n", handlers[buf[0] % ${files}]((int)n));`, '        fflush(stdout);', '    }', '}', '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(dir, 'Makefile'), `app: ${Array.from({ length: files }, (_, u) => `u${u}.c`).join(' ')} main.c app.h\n\t$(CC) $(CFLAGS) -O2 -o $@ ${Array.from({ length: files }, (_, u) => `u${u}.c`).join(' ')} main.c\n`);
  let total = 0;
  for (const f of fs.readdirSync(dir)) if (/\.[ch]$/.test(f)) total += fs.readFileSync(path.join(dir, f), 'utf8').split('\n').length;
  return total;
}

module.exports = { generate };
