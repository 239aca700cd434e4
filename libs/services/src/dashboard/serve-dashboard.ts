import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';

/**
 * Where the dashboard's built page is: `DSU_DASHBOARD_DIR`, else the dashboard app's build output
 * in this checkout (apps/dashboard/dist; a path, not an import: apps do not depend on apps).
 */
export function dashboardDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DSU_DASHBOARD_DIR || resolve(__dirname, '../../../../apps/dashboard/dist');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Serves the dashboard at `/` (index.html) and `/assets/*` (its hashed bundles). The page holds
 * no data: it reads the API with the user's token, so its files are public like `/health`. A
 * missing build answers 404 saying how to build it. Files are read once, at start.
 */
export function serveDashboard(app: INestApplication, env: NodeJS.ProcessEnv = process.env): void {
  const dir = dashboardDir(env);
  const files = new Map<string, { type: string; body: Buffer }>();
  if (existsSync(join(dir, 'index.html'))) {
    files.set('/', { type: TYPES['.html'], body: readFileSync(join(dir, 'index.html')) });
    const assets = join(dir, 'assets');
    if (existsSync(assets))
      for (const name of readdirSync(assets)) {
        const ext = name.slice(name.lastIndexOf('.'));
        if (TYPES[ext]) files.set(`/assets/${name}`, { type: TYPES[ext], body: readFileSync(join(assets, name)) });
      }
  }
  app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const requested = new URL(req.url ?? '/', 'http://dashboard').pathname;
    const path = requested === '/index.html' ? '/' : requested;
    if (path !== '/' && !path.startsWith('/assets/')) return next();
    const file = files.get(path);
    if (!file) {
      const error =
        path === '/'
          ? `the dashboard is not built (${dir}/index.html missing): run 'npx nx run dashboard:build', or set DSU_DASHBOARD_DIR`
          : `no dashboard asset ${path}`;
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error }));
      return;
    }
    res.setHeader('Content-Type', file.type);
    // Hashed bundle names never change content; the page itself is always fetched anew.
    res.setHeader('Cache-Control', path === '/' ? 'no-cache' : 'public, max-age=31536000, immutable');
    res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:");
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.end(req.method === 'HEAD' ? undefined : file.body);
  });
}
