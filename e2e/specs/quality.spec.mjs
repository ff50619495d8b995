// The quality panel: perplexity, KL vs FP16 and top-1 agreement at each precision, measured in
// the page on a built-in text, with the plain-language note about a 4-bit source file. On the
// tiny test model (the default model's formats: Q4_1 layers, Q8_0 embedding); the default model's
// own quality figures are checked natively (engine/tests/suite/quality.rs). A conversation held across a
// quality run and a comparison keeps its KV cache: the next reply reads only its own tokens.
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test('the quality panel measures every precision on a built-in text', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.setMaxTokens(6);
  await app.waitReply(await app.send('What is the capital of France?'));
  const context = await app.id('context-usage').textContent();
  const firstPrompt = Number((await app.id('prompt-tokens').textContent()).match(/^(\d+) tokens/)[1]);
  const panel = app.id('quality-panel');
  await expect(app.id('quality-source-note')).toContainText('Q4_1');
  await expect(app.id('quality-source-note')).toContainText('stored at 8 bits or more');
  await app.id('quality-text-choice').selectOption({ index: 1 });
  await expect(app.id('quality-text')).toHaveValue(/bicycle/);
  await app.id('quality-max-tokens').fill('48');
  await app.id('quality-max-tokens').dispatchEvent('change');
  await app.id('quality-run').click();
  await expect(app.id('quality-status')).toContainText('scoring at');
  const rows = app.id('quality-row');
  // FP16, INT8, INT4 and the plan the model is at (the file's own mix: INT4 matrices, INT8 embedding).
  await expect(rows).toHaveCount(4, { timeout: LONG });
  await panel.scrollIntoViewIfNeeded();
  await app.screenshot(testInfo, 'quality');
  const result = await rows.evaluateAll((rs) => rs.map((r) => ({
    p: r.dataset.precision,
    ppl: parseFloat(r.querySelector('[data-testid=quality-ppl]').textContent),
    kl: parseFloat(r.querySelector('[data-testid=quality-kl]').textContent),
    top1: r.querySelector('[data-testid=quality-top1]').textContent,
  })));
  console.log(`quality in the page: ${JSON.stringify(result)}`);
  expect(result.map((r) => r.p)).toEqual(['fp16', 'int8', 'int4', 'int4-int4-int8']);
  for (const r of result) expect(r.ppl).toBeGreaterThan(1);
  expect(result[0].kl).toBe(0);
  expect(result[0].top1).toBe('100.0%');
  expect(result[1].kl).toBeGreaterThan(0);
  expect(result[2].kl).toBeGreaterThan(result[1].kl);
  await expect(app.id('quality-result')).toContainText('48 tokens');
  // Beside FP16's, each perplexity says whether its difference is inside the run's noise (two
  // standard errors of the per-token difference), and the note says what that means.
  const vs = await app.id('quality-vs-fp16').evaluateAll((cs) => cs.map((c) => ({ text: c.textContent, noise: parseFloat(c.dataset.noise) })));
  console.log(`vs FP16: ${JSON.stringify(vs)}`);
  expect(vs[0].text).toBe('–');
  for (let i = 1; i < vs.length; i++) {
    const m = vs[i].text.match(/^([+-]\d+\.\d)% \((within ±|noise ±)(\d+\.\d)% noise\)$|^([+-]\d+\.\d)% \(noise ±(\d+\.\d)%\)$/);
    expect(m, vs[i].text).not.toBeNull();
    const within = Math.abs(Math.log(result[i].ppl / result[0].ppl)) <= vs[i].noise;
    expect(vs[i].text.includes('within'), `${result[i].p}: ${vs[i].text}`).toBe(within);
  }
  await expect(app.id('quality-noise-note')).toContainText('A longer text narrows the band.');
  // Two bar charts (perplexity, KL), one bar per precision, drawn as SVG.
  await expect(app.id('quality-charts').locator('svg')).toHaveCount(2);
  await expect(app.id('quality-charts').locator('svg').first()).toContainText('INT4');
  // The model is back at the precisions it had (the file's own), ready to chat.
  await expect(app.id('precision-file')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('model-status')).toContainText('ready');

  // A comparison too (its lanes have their own caches), then the conversation goes on.
  await app.runCompare(3);
  await expect(app.id('context-usage')).toHaveText(context);
  await app.waitReply(await app.send('And of Germany?'));
  const [total, reused] = (await app.id('prompt-tokens').textContent()).match(/^(\d+) tokens \((\d+) reused/).slice(1).map(Number);
  console.log(`after a quality run and a comparison: ${context}; the next prompt ${total} tokens, ${reused} reused`);
  // Everything up to the first reply is reused (the reply's own tokens, read back from its text,
  // may tokenize differently).
  expect(reused).toBeGreaterThanOrEqual(firstPrompt);
  expect(app.errors).toEqual([]);
});

test('the long text scores every KV cache format the model can hold', async ({ page }) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  // The long story (the file scripts/long-context.sh scores) is scored whole, with the KV formats.
  await app.id('quality-text-choice').selectOption({ label: 'The river ferry (long story)' });
  await expect(app.id('quality-text')).toHaveValue(/ferry at Dunley/);
  await expect(app.id('quality-max-tokens')).toHaveValue('2048');
  await expect(app.id('quality-kv')).toBeChecked();
  await app.id('quality-max-tokens').fill('256');
  await app.id('quality-max-tokens').dispatchEvent('change');
  await app.id('quality-run').click();
  const rows = app.id('quality-row');
  // The tiny model's rows of 32 values hold f16 and INT8 caches, not INT4/INT3's units of 64.
  await expect(rows).toHaveCount(6, { timeout: LONG });
  const result = await rows.evaluateAll((rs) => rs.map((r) => ({
    p: r.dataset.precision,
    ppl: parseFloat(r.querySelector('[data-testid=quality-ppl]').textContent),
    kl: parseFloat(r.querySelector('[data-testid=quality-kl]').textContent),
  })));
  console.log(`KV formats in the page: ${JSON.stringify(result)}`);
  expect(result.map((r) => r.p)).toEqual(['fp16', 'int8', 'int4', 'fp16+kv-f16', 'fp16+kv-int8', 'int4-int4-int8']);
  const kv8 = result.find((r) => r.p === 'fp16+kv-int8');
  expect(kv8.kl).toBeGreaterThan(0);
  await expect(app.id('quality-result')).toContainText('256 tokens');
  expect(app.errors).toEqual([]);
});

test('8-bit activations: switched on the loaded model, scored beside weights-only, and timed', async ({ page }) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.setMaxTokens(6);
  await expect(app.id('act-f32')).toHaveAttribute('aria-pressed', 'true');
  // The chat's matrices (the file's own mix: INT4 layers, INT8 embedding) multiply 8-bit inputs
  // from the next token on; the conversation goes on.
  await app.waitReply(await app.send('What is the capital of France?'));
  await app.id('act-int8').click();
  await expect(app.id('act-int8')).toHaveAttribute('aria-pressed', 'true', { timeout: LONG });
  await app.waitReady();
  await expect(app.id('act-status')).toContainText('multiply 8-bit activations');
  const reply = await app.send('And of Italy?');
  await app.waitReply(reply);
  expect((await reply.getByTestId('message-text').textContent()).trim().length).toBeGreaterThan(0);
  // Each reply says what wrote it: the first weights only, the second with 8-bit activations.
  await expect(app.id('assistant-message').first()).toHaveAttribute('data-act', 'f32');
  await expect(reply).toHaveAttribute('data-act', 'int8');
  await expect(reply.locator('.msg-meta .badge')).toContainText('activations int8');
  // The quality panel scores INT8 and INT4 with 8-bit activations beside weights-only, and the
  // chat's own setting (now with 8-bit activations) beside the file's.
  await app.id('quality-text-choice').selectOption({ index: 1 });
  await app.id('quality-acts').check();
  await app.runQuality(48, 7);
  const result = await app.id('quality-row').evaluateAll((rs) => rs.map((r) => ({
    p: r.dataset.precision,
    ppl: parseFloat(r.querySelector('[data-testid=quality-ppl]').textContent),
    kl: parseFloat(r.querySelector('[data-testid=quality-kl]').textContent),
  })));
  console.log(`8-bit activations in the page: ${JSON.stringify(result)}`);
  expect(result.map((r) => r.p)).toEqual(['fp16', 'int8', 'int4', 'int8+act-int8', 'int4+act-int8', 'int4-int4-int8+act-int8', 'int4-int4-int8']);
  const by = Object.fromEntries(result.map((r) => [r.p, r]));
  // Rounding the inputs too costs something, and is measured: not the weights-only figures again.
  expect(by['int8+act-int8'].kl).toBeGreaterThan(0);
  expect(by['int8+act-int8'].ppl).not.toBe(by.int8.ppl);
  expect(by['int4+act-int8'].ppl).not.toBe(by.int4.ppl);
  // The measurement gave the chat its setting back.
  await expect(app.id('act-int8')).toHaveAttribute('aria-pressed', 'true');
  // The benchmark times INT8 and INT4 with 8-bit activations too, and says what they buy.
  await app.setBenchTokens(8, 4);
  await app.id('bench-acts').check();
  await app.id('bench-run').click();
  await expect(app.id('model-bench-row')).toHaveCount(5, { timeout: LONG });
  const bench = JSON.parse(await app.id('bench-result').textContent());
  expect(bench.rows.map((r) => `${r.precision} ${r.activations}`)).toEqual(['fp16 f32', 'int8 f32', 'int8 int8', 'int4 f32', 'int4 int8']);
  for (const r of bench.rows) {
    expect(r.decode_tokens_per_second).toBeGreaterThan(0);
    // Each of the 9 matvecs of a step quantizes its input first with 8-bit activations.
    expect(r.dispatches_per_token).toBe(r.activations === 'int8' ? 30 : 21);
    expect([r.buffers_per_token, r.bind_groups_per_token]).toEqual([0, 0]);
  }
  await expect(app.id('bench-a8-ratio')).toContainText('INT4 with 8-bit activations decodes');
  await expect(app.id('act-int8')).toHaveAttribute('aria-pressed', 'true');
  // A precision switch keeps the loaded model's activations.
  await app.setPrecision('int8');
  await expect(app.id('act-int8')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('act-status')).toContainText('multiply 8-bit activations');
  expect(app.errors).toEqual([]);
});
