// A lost GPU device (driver reset, GPU removed, the browser reclaiming it) does not lose the
// conversation: the worker asks for a new device, loads the same model at the same precision
// and KV format, and the next reply works. Forced with Diagnostics → "Simulate a lost GPU",
// which destroys the device. On the tiny test model.
import { test, expect } from '@playwright/test';
import { AppPage, LONG, TINY_MODEL } from '../pages/app.mjs';

test('after a lost GPU device the model is loaded again and the conversation goes on', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.setPrecision('int8');
  await app.id('kv-f16').click();
  await expect(app.id('kv-f16')).toHaveAttribute('aria-pressed', 'true', { timeout: LONG });
  await app.setMaxTokens(4);
  await app.waitReply(await app.send('Hello!'));
  await expect(app.id('user-message')).toHaveCount(1);

  await app.openDiagnostics();
  await app.id('lose-device').click();
  // The loss is named while the model loads again...
  await expect(app.id('error-message')).toHaveAttribute('data-kind', 'DeviceLost', { timeout: LONG });
  await expect(app.id('error-message')).toContainText('asking for a new GPU device');
  await app.screenshot(testInfo, 'device-lost');
  // ...then the page is ready at the same precision and KV format, the conversation on screen.
  await expect(app.id('model-status')).toContainText(`ready: ${TINY_MODEL} at INT8 (loaded again on a new GPU device`, { timeout: LONG });
  await expect(app.id('error-message')).toHaveCount(0);
  await expect(app.id('kv-f16')).toHaveAttribute('aria-pressed', 'true', { timeout: LONG });
  await expect(app.id('user-message')).toHaveCount(1);
  await expect(app.id('assistant-message')).toHaveCount(1);
  const reply = await app.send('And again?');
  await app.waitReply(reply);
  await expect(reply.getByTestId('message-text')).not.toBeEmpty();
  await expect(reply).toHaveAttribute('data-precision', 'int8');
  // The new device read the whole conversation again (the old cache went with the old device).
  await expect(app.id('prompt-tokens')).toContainText('(0 reused from the cache)');
  // The old device went with the old model: the worker holds one.
  await expect(app.id('gpu-resources-exact')).toHaveText(/^devices=1 buffers=\d+/, { timeout: LONG });
  await app.screenshot(testInfo, 'recovered');
  expect(app.errors).toEqual([]);
});
