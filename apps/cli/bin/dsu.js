#!/usr/bin/env node
// The `dsu` command. Built output lives in dist/; run `npm run build` after changing sources.
try {
  require('../dist/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    console.error('dsu: the CLI is not built yet; run `npm ci && npm run build` in the repository root first');
    process.exit(2);
  }
  throw err;
}
