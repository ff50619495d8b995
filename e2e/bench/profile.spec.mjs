// Where a decode step's time goes in the page, per precision: the speed panel's profile (wall time
// and every kernel's GPU time from timestamp queries) at FP16, INT8 and INT4 on the default model.
// Not a test: it prints. `cd e2e && npx playwright test --config bench.config.mjs profile`
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test('decode profile per precision, default model', async ({ page }) => {
  test.setTimeout(2 * LONG);
  const app = new AppPage(page);
  await app.open();
  await app.loadDefault();
  for (const p of ['fp16', 'int8', 'int4']) {
    await app.setPrecision(p);
    await app.id('speed-profile').click();
    const row = app.id('speed-row').filter({ hasText: p.toUpperCase() });
    await expect(row).toHaveCount(1, { timeout: LONG });
    await expect(app.id('kernel-time-row').first()).toBeVisible({ timeout: LONG });
    console.log(`${p}: ${await row.textContent()} | ${await app.id('speed-table').locator('caption').textContent().catch(() => '')}`);
    for (const k of await app.id('kernel-time-row').allTextContents()) console.log(`  ${k}`);
  }
});
