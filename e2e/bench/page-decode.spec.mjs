// Decode and prefill speed in the page (headless Chromium, WebGPU on this machine's adapter), for
// README's performance section and the closing notes: not a test (nothing here can fail on speed).
//   scripts/bench-page.sh   (after scripts/test.sh has built dist/)
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test('decode and prefill tok/s in the page, default model', async ({ page }) => {
  const app = new AppPage(page);
  await app.open();
  await app.openDiagnostics();
  const adapter = await app.id('adapter-name').textContent();
  await app.loadDefault();
  await app.setMaxTokens(Number(process.env.TOKENS || 32));
  const rows = [];
  for (const p of (process.env.PRECISIONS || 'fp16,int8,int4').split(',')) {
    await app.setPrecision(p);
    const msg = await app.send('Tell me a short story about a robot who learns to paint.');
    await app.waitReply(msg, LONG);
    await expect(app.id('decode-tps')).not.toHaveText('…');
    rows.push({
      precision: p,
      decode: await app.id('decode-tps').textContent(),
      prefill: await app.id('prefill-tps').textContent(),
      prompt: await app.id('prompt-tokens').textContent(),
    });
  }
  console.log(`lowbit page bench, adapter: ${adapter}`);
  console.log(JSON.stringify(rows, null, 1));
});
