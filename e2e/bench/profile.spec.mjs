// Where a decode step's time goes in the page, per precision: the speed panel's profile (wall time
// and every kernel's GPU time from timestamp queries) at FP16, INT8 and INT4 on the default model.
// Not a test: it prints. `cd e2e && npx playwright test --config bench.config.mjs profile`
//   ACTS=f32,int8 also profiles INT8 and INT4 with 8-bit activations (default f32 only).
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test('decode profile per precision, default model', async ({ page }) => {
  test.setTimeout(2 * LONG);
  const app = new AppPage(page);
  await app.open();
  await app.loadDefault();
  const acts = (process.env.ACTS || 'f32').split(',');
  for (const a of acts) {
    for (const p of a === 'f32' ? ['fp16', 'int8', 'int4'] : ['int8', 'int4']) {
      await app.setPrecision(p);
      if ((await app.id(`act-${a}`).getAttribute('aria-pressed')) !== 'true') {
        await app.id(`act-${a}`).click();
        await expect(app.id(`act-${a}`)).toHaveAttribute('aria-pressed', 'true', { timeout: LONG });
        await app.waitReady();
      }
      await app.id('speed-profile').click();
      const row = app.id('speed-row').filter({ hasText: p.toUpperCase() }).last();
      await expect(row).toBeVisible({ timeout: LONG });
      await expect(app.id('kernel-time-row').first()).toBeVisible({ timeout: LONG });
      await app.waitReady();
      console.log(`${p} activations ${a}: ${await row.textContent()} | ${await app.id('speed-table').locator('caption').textContent().catch(() => '')}`);
      for (const k of await app.id('kernel-time-row').allTextContents()) console.log(`  ${k}`);
    }
  }
});
