// Quantization methods in the page: the method selector beside the precision re-quantizes the
// loaded model (calibrating first for the calibrated methods, on the built-in text, in the
// worker), the reply badge and the status name the method, the quality panel puts every INT4
// method beside FP16, the variant downloads as a GGUF file the page loads again, and a reload
// loads at the method chosen. On the tiny test model.
import fs from 'node:fs';
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test('switching the quantization method calibrates once and is measured beside FP16', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await app.open();
  await app.loadTiny();
  await app.setPrecision('int4');
  await expect(app.id('method')).toHaveValue('rtn');
  await expect(app.id('method-explain')).toContainText('rounded to the nearest level');
  await app.id('method').selectOption('gptq');
  await expect(app.id('model-status')).toContainText('INT4 (GPTQ)', { timeout: LONG });
  await expect(app.id('precision-int4')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('method-explain')).toContainText('compensated');
  // Uniform INT4 requantizes the tiny model's Q8_0 embedding: there the method matters.
  await expect(app.id('method-explain')).not.toContainText('every method gives the same numbers');
  const note = await app.id('calibration-note').textContent();
  console.log(`calibration: ${note}`);
  expect(note).toMatch(/^Calibrated on \d+ tokens of the built-in calibration text in \d+\.\d s/);
  await expect(app.id('weights-bytes')).toContainText('INT4 (GPTQ)');

  // The reply says which variant wrote it.
  await app.setMaxTokens(4);
  const msg = await app.send('Hello');
  await app.waitReply(msg);
  await expect(msg).toContainText('GPTQ');

  // Another calibrated method reuses the calibration (the note's figures stay).
  await app.id('method').selectOption('imatrix');
  await expect(app.id('model-status')).toContainText('INT4 (IMATRIX)', { timeout: LONG });
  await expect(app.id('calibration-note')).toHaveText(note);

  // Every INT4 method beside FP16, INT8 and INT4 by rounding.
  await app.id('quality-methods').check();
  await app.runQuality(32, 8);
  const rows = await app.id('quality-row').evaluateAll((rs) => rs.map((r) => ({
    p: r.dataset.precision,
    kl: parseFloat(r.querySelector('[data-testid=quality-kl]').textContent),
  })));
  console.log(`quality by method: ${JSON.stringify(rows)}`);
  // ... and the file's own setting, where the chat loads by default.
  expect(rows.map((r) => r.p)).toEqual(['fp16', 'int8', 'int4', 'int4@search', 'int4@imatrix', 'int4@awq', 'int4@gptq', 'int4-int4-int8']);
  // Every requantized row moves away from FP16; the file's own setting keeps its blocks exactly.
  for (const r of rows.slice(1, -1)) expect(r.kl, r.p).toBeGreaterThan(0);
  expect(rows.at(-1).kl).toBeLessThanOrEqual(rows[1].kl);
  await expect(app.id('quality-result')).toContainText('INT4 GPTQ');

  // Download as GGUF: the weights the page runs, as a file the page (and llama.cpp) loads.
  const [download] = await Promise.all([page.waitForEvent('download'), app.id('export-gguf').click()]);
  expect(download.suggestedFilename()).toBe('lowbit-tiny.lowbit-int4@imatrix.gguf');
  const saved = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(saved);
  const bytes = fs.readFileSync(saved);
  expect(bytes.subarray(0, 4).toString('latin1')).toBe('GGUF');
  await expect(app.id('export-done')).toContainText('lowbit-int4@imatrix.gguf');
  console.log(`exported ${bytes.length} bytes`);
  await app.id('model-file-input').setInputFiles(saved);
  await expect(app.id('model-status')).toContainText('ready: lowbit-tiny.lowbit-int4@imatrix.gguf', { timeout: LONG });

  // A reload loads at the chosen precision and method, calibrating during the load.
  await page.reload();
  await app.loadTiny();
  await expect(app.id('model-status')).toContainText('INT4 (IMATRIX)');
  await expect(app.id('method')).toHaveValue('imatrix');
  await expect(app.id('calibration-note')).toContainText('Calibrated on');
  // Back to rounding: no calibration needed, and FP16 says the method does not matter there.
  await app.id('method').selectOption('rtn');
  await expect(app.id('model-status')).toContainText(/at INT4$/, { timeout: LONG });
  expect(app.errors).toEqual([]);
});

test('the ladder down to INT2: measured beside FP16, and a chat at 3 bits per weight', async ({ page }) => {
  const app = new AppPage(page);
  await app.open();
  // Before a load nothing looks chosen: the file's own precisions are the default.
  await expect(app.id('precision-default')).toContainText('As stored');
  for (const p of ['fp16', 'int8', 'int4', 'int3', 'int2']) await expect(app.id(`precision-${p}`)).toHaveAttribute('aria-pressed', 'false');
  await app.loadTiny();
  await expect(app.id('precision-file')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('precision-default')).toHaveCount(0);
  await app.id('quality-ladder').check();
  await app.id('quality-methods').check();
  // FP16, INT8, INT4, INT3, INT2, INT4 by each other method (calibrating first, in the quality
  // run) and the file's own mix the model is at.
  await app.runQuality(32, 10);
  await expect(app.id('calibration-note')).toContainText('Calibrated on');
  const rows = await app.id('quality-row').evaluateAll((rs) => rs.map((r) => ({
    p: r.dataset.precision,
    kl: parseFloat(r.querySelector('[data-testid=quality-kl]').textContent),
  })));
  console.log(`quality down the ladder: ${JSON.stringify(rows)}`);
  expect(rows.map((r) => r.p)).toEqual(['fp16', 'int8', 'int4', 'int3', 'int2', 'int4@search', 'int4@imatrix', 'int4@awq', 'int4@gptq', 'int4-int4-int8']);
  const kl = Object.fromEntries(rows.map((r) => [r.p, r.kl]));
  expect(kl.int3).toBeGreaterThan(kl.int4);
  expect(kl.int2).toBeGreaterThan(kl.int3);
  // At the file's own precisions every block is kept as stored: the picker says a method
  // changes nothing there.
  // changes nothing there, and the setting's name leaves the method out.
  await app.id('method').selectOption('awq');
  await expect(app.id('method-explain')).toContainText('every method gives the same numbers here', { timeout: LONG });
  await app.waitReady();
  await expect(app.id('model-status')).toContainText('at As stored (INT4 layers, INT8 embeddings)');
  await expect(app.id('model-status')).not.toContainText('AWQ');
  // ... and the compare view offers that setting once, not again under the method's name.
  await expect(page.locator('.compare-form label').filter({ hasText: 'As stored' })).toHaveCount(1);
  await app.setPrecision('int2');
  await expect(app.id('weights-bytes')).toContainText('INT2');
  await app.setMaxTokens(4);
  const msg = await app.send('Hello');
  await app.waitReply(msg);
  await expect(msg).toContainText('INT2');
  expect(app.errors).toEqual([]);
});
