#!/usr/bin/env node
// dsu-cc: drop-in C compiler that makes programs live-updatable (see libs/instrument).
// `dsu-cc --serve [--] <build command...>` runs a whole build through one compile server.
const argv = process.argv.slice(2);
const serve = argv[0] === '--serve';
let lib;
try {
  // Only what this mode needs: every compile step without a server pays node's start-up.
  lib = require(serve ? '../dist/compile-server.js' : '../dist/dsu-cc.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    console.error('dsu-cc: not built yet; run `npm ci && npm run build` in the dsu repository first');
    process.exit(2);
  }
  throw err;
}
const run = serve
  ? lib.runWithCompileServer(argv.slice(1), process.env)
  : lib.runDsuCc(argv, { cwd: process.cwd(), env: process.env, log: (l) => console.error(l) });
run.then(
  (code) => process.exit(code),
  (err) => {
    console.error(`dsu-cc: ${err && err.message ? err.message : err}`);
    process.exit(1);
  },
);
