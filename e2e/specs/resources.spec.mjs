// Resource hygiene in the page: twenty precision switches and five loads of the same model leave
// the worker's GPU buffers (their count and bytes) where they were at the same precision, on one
// device. Diagnostics shows the counts the worker keeps (`lowbit::gpu::Gpu::live`), refreshed after
// every job. On the tiny test model.
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test('switches and reloads give back every GPU buffer', async ({ page }) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.setMaxTokens(2);
  await app.setPrecision('fp16');
  await app.waitReply(await app.send('Hello!'));
  await app.openDiagnostics();
  const exact = app.id('gpu-resources-exact');
  await expect(exact).toHaveText(/^devices=1 buffers=\d+ bytes=\d+$/, { timeout: LONG });
  const base = await exact.textContent();
  const [, buffers, bytes] = base.match(/buffers=(\d+) bytes=(\d+)/).map(Number);
  expect(buffers).toBeGreaterThan(10);
  expect(bytes).toBeGreaterThan(1e6);
  await expect(app.id('gpu-resources')).toContainText(`1 GPU device, ${buffers} buffers holding`);

  // Twenty switches, the last back to FP16, with a reply at each other precision.
  for (let i = 0; i < 20; i++) {
    await app.setPrecision(i % 2 ? 'fp16' : ['int8', 'int4'][(i / 2) % 2]);
    if (i % 4 === 0) await app.waitReply(await app.send(`Switch ${i}?`));
  }
  await app.waitReply(await app.send('Back at FP16?'));
  await expect(exact).toHaveText(base, { timeout: LONG });

  // Five loads of the same file (from the model cache), each replacing the model before it.
  for (let i = 0; i < 5; i++) {
    await app.loadTiny();
    await app.waitReply(await app.send(`Load ${i}?`));
    await expect(exact).toHaveText(base, { timeout: LONG });
  }
  expect(app.errors).toEqual([]);
});
