// The dashboard in a real browser (Debian's Chromium, headless, driven by Playwright) against
// `dsu up`: a rollout started from the CLI appears and completes on the page without a reload; a
// rollout that fails shows its reason; the fleet and the programs' lineage are there. Screenshots
// go to tmp/screenshots (the README's come from there).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { dsu } from './support/dsu-cli';
import { fixtureSourceDir, makeTempDir, removeDir, startServer, stopAllServers } from './support/fixtures';
import { startLoad } from './support/load-client';
import { embeddedUp, localToken, startService, stopAllServices } from './support/pipeline-services';

jest.setTimeout(420_000);

const CHROMIUM = process.env.DSU_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = path.resolve(__dirname, '../../../tmp/screenshots');

let work = '';
let browser: Browser | undefined;
beforeAll(async () => {
  work = makeTempDir('dsu-e2e-dashboard-');
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's chromium (tools/bootstrap does as root) or set DSU_CHROMIUM`,
    );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The machine's network is closed: Chromium's own background connections only fail and slow it.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  fs.mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await stopAllServers();
  await stopAllServices();
  if (work) removeDir(work);
});

describe('the dashboard, in Chromium, against dsu up', () => {
  it('shows a CLI-started rollout live until it completes, a failed rollout with its reason, the fleet and the lineage', async () => {
    const { gateway, runDir, env } = await embeddedUp(work, 'dash-host', { heartbeatMs: 500 });
    const cli = (args: string[]) => dsu(args, { ...env, DSU_GATEWAY: gateway });
    await startService('up', env, work, 'up');
    // Each version builds; `dsu submit` exits 1 when the checker rejects the patch to it.
    const submit = async (program: string, version: string, point?: string) => {
      const args = ['submit', fixtureSourceDir(program, version), '--program', program, '--version', version];
      const r = await cli(point ? [...args, '--update-point', point] : args);
      expect({ version, build: (r.json.build as { status?: string } | undefined)?.status }).toEqual({
        version,
        build: 'built',
      });
      return r;
    };
    await submit('pollserver', 'v1', 'serve:loop');
    expect((await cli(['install', 'pollserver', 'v1', '--out', path.join(work, 'v1')])).code).toBe(0);
    const server = await startServer(path.join(work, 'v1', 'pollserver'), { env: { DSU_RUN_DIR: runDir } });
    await submit('pollserver', 'v2', 'serve:loop');

    const page: Page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Without a token the page asks for one; with it (as the URL fragment) it goes live.
    await page.goto(`${gateway}/`);
    await page.waitForSelector('form.login');
    await page.goto(`${gateway}/#token=${localToken(env)}`);
    await page.waitForSelector('#live[data-state=live]');
    expect(new URL(page.url()).hash).not.toContain('token'); // not left in the address bar

    // The fleet shows the process on v1.
    await page.click('button[data-tab=fleet]');
    await page.waitForSelector(`tr[data-pid="${server.pid}"] >> text=v1`);

    // A rollout started from the CLI appears on the open page and completes there, under load.
    await page.click('button[data-tab=rollouts]');
    const load = startLoad({
      port: server.port,
      clients: 2,
      durationMs: 60_000,
      script: [{ send: 'VERSION', expect: ['pollserver 1', 'pollserver 2'] }],
    });
    const r = await cli(['rollout', 'pollserver', '--to', 'v2']);
    expect(r).toMatchObject({ code: 0, json: { status: 'completed' } });
    const card = `article.rollout[data-rollout="${r.json.rolloutId as string}"]`;
    await page.waitForSelector(`${card}[data-status=completed]`, { timeout: 30_000 });
    expect(await page.textContent(`${card} tr[data-pid="${server.pid}"]`)).toMatch(/applied\d* µs/);
    expect(await page.isVisible(`${card} canvas`)).toBe(true); // the pause histogram
    expect((await load.stop()).failed).toBe(0);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-rollouts.png'), fullPage: true });

    // A rollout that fails: mainloop v4 -> v5 is rejected by the checker (a local's address is
    // held elsewhere), so the process cannot get it; the page says why.
    await submit('mainloop', 'v4');
    expect((await cli(['install', 'mainloop', 'v4', '--out', path.join(work, 'm4')])).code).toBe(0);
    const m4 = await startServer(path.join(work, 'm4', 'mainloop'), { env: { DSU_RUN_DIR: runDir } });
    expect((await submit('mainloop', 'v5')).json).toMatchObject({ patch: { verdict: 'rejected' } });
    await page.click('button[data-tab=fleet]');
    await page.waitForSelector(`tr[data-pid="${m4.pid}"] >> text=v4`, { timeout: 30_000 });
    await page.click('button[data-tab=rollouts]');
    const failed = await cli(['rollout', 'mainloop', '--to', 'v5']);
    expect(failed.code).not.toBe(0);
    const fcard = `article.rollout[data-rollout="${failed.json.rolloutId as string}"]`;
    await page.waitForSelector(`${fcard}[data-status=failed]`, { timeout: 30_000 });
    expect(await page.textContent(`${fcard} .notes`)).toMatch(/rejected by the checker/);
    expect(await page.textContent(`${fcard} tr[data-pid="${m4.pid}"]`)).toMatch(/failed/);

    // The lineage: versions with their builds, the patch between them with its verdict and findings.
    await page.click('button[data-tab=programs]');
    await page.click('nav.programs button:has-text("mainloop")');
    await page.waitForSelector('article.version[data-version=v5] .patch >> text=rejected');
    expect(await page.textContent('article.version[data-version=v5] .findings')).toMatch(/requests/);
    await page.click('nav.programs button:has-text("pollserver")');
    await page.waitForSelector('article.version[data-version=v2] .patch >> text=approved');
    expect(await page.textContent('article.version[data-version=v2] .points')).toMatch(/allowed: .*loop/);
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-programs.png'), fullPage: true });

    await page.click('button[data-tab=charts]');
    await page.waitForSelector('canvas#stage-latency');
    await page.screenshot({ path: path.join(SHOTS, 'dashboard-charts.png'), fullPage: true });
    expect(errors).toEqual([]);
  });
});
