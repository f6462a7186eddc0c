// The flame graph on the agent's page, in headless Debian chromium: a C program whose burn_hot
// takes ~80% of its CPU shows as a burn_hot box most of the service's width; clicking it zooms in.
// The flame graph's screenshot goes to test/output/profile-flame.png.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { requireBpf, startAgent } from '../helpers/agent';
import { repoRoot } from '../helpers/decoder';
import { HOT_C, dir, build, run } from './helpers';

const OUT = path.join(repoRoot, 'test', 'output');

test('page: the flame graph of a service shows its hot function at its share, and zooms on click', async (t) => {
  if (!requireBpf(t)) return;
  if (!fs.existsSync('/usr/bin/chromium')) {
    if (process.env.CI === 'true') throw new Error('chromium not installed (scripts/setup.sh)');
    t.skip('chromium not installed');
    return;
  }
  const exe = build('hotpage', HOT_C);
  const child = run(exe, [], { OTEL_SERVICE_NAME: 'flamer' });
  const cfgFile = path.join(dir(), 'agent-page.yaml');
  fs.writeFileSync(cfgFile, `tracers:\n  socket:\n    enabled: false\n  profile:\n    enabled: true\n    frequency_hz: 199\n    interval_ms: 1000\n    pids: [${child.pid}]\n`);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try { agent = await startAgent({ config: cfgFile }); } catch (e) { child.kill('SIGKILL'); throw e; }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    let samples = 0;
    for (let i = 0; i < 90 && samples < 300; i++) {
      const j = await (await agent.api('/api/profile?service=flamer&seconds=300')).json() as { tree: { value: number } };
      samples = j.tree.value;
      if (samples < 300) await new Promise((r) => setTimeout(r, 500));
    }
    assert.ok(samples >= 300, `flamer has ${samples} samples`);

    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await page.goto(`http://127.0.0.1:${agent.apiPort}/`);
    // The service list fills from the API; pick the service like a user would.
    await page.locator('#flamesvc option[value="flamer"]').waitFor({ state: 'attached', timeout: 20_000 });
    await page.selectOption('#flamesvc', 'flamer');
    await page.waitForFunction(() => document.querySelector('#flame .f')?.textContent === 'flamer', undefined, { timeout: 20_000 });
    await page.locator('#flame .f', { hasText: /^burn_hot$/ }).first().waitFor({ timeout: 20_000 });
    // Read the drawn boxes in one go (the page redraws every 5 s).
    const drawn = await page.evaluate(() => {
      const boxes = Array.from(document.querySelectorAll<HTMLElement>('#flame .f'));
      const hots = boxes.filter((b) => b.textContent === 'burn_hot');
      const widest = hots.sort((a, b) => b.getBoundingClientRect().width - a.getBoundingClientRect().width)[0];
      return {
        root: boxes[0]?.textContent,
        rootW: boxes[0]?.getBoundingClientRect().width ?? 0,
        hotW: hots.reduce((a, b) => a + b.getBoundingClientRect().width, 0),
        path: widest?.dataset.path ?? '',
        title: widest?.title ?? '',
      };
    });
    assert.equal(drawn.root, 'flamer');
    assert.ok(drawn.hotW / drawn.rootW >= 0.6, `burn_hot boxes are ${(100 * drawn.hotW / drawn.rootW).toFixed(0)}% of the service width`);
    assert.match(drawn.title, /^burn_hot · \d+ samples · \d+\.\d%$/);
    fs.mkdirSync(OUT, { recursive: true });
    await page.locator('#flame').screenshot({ path: path.join(OUT, 'profile-flame.png') });

    // Zoom: the clicked burn_hot becomes the root and spans the whole graph.
    await page.locator(`#flame .f[data-path='${drawn.path.replace(/'/g, "\\'")}']`).click();
    await page.waitForFunction(() => document.querySelector('#flame .f')?.textContent === 'burn_hot');
    const zoom = await page.evaluate(() => ({ w: document.querySelector('#flame .f')!.getBoundingClientRect().width, box: document.querySelector('#flame')!.getBoundingClientRect().width }));
    assert.ok(zoom.w >= zoom.box * 0.95, `zoomed root ${zoom.w}px of ${zoom.box}px`);
  } finally {
    await browser.close();
    child.kill('SIGKILL');
    await agent.stop();
    fs.rmSync(agent.dataDir, { recursive: true, force: true });
  }
});
