#!/usr/bin/env node
// dsu-cc: drop-in C compiler that makes programs live-updatable (see libs/instrument).
let runDsuCc;
try {
  ({ runDsuCc } = require('../dist/dsu-cc.js'));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    console.error('dsu-cc: not built yet; run `npm ci && npm run build` in the dsu repository first');
    process.exit(2);
  }
  throw err;
}
runDsuCc(process.argv.slice(2), { cwd: process.cwd(), env: process.env, log: (l) => console.error(l) }).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`dsu-cc: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
  },
);
