// The precision lab: the lock-step compare view at FP16, INT8 and INT4 with per-precision
// summaries; a shared link that reproduces the same comparison; the speed panel's profile; the
// inspector's histograms; a mixed-precision plan. All on the tiny test model (the default model's
// tokenizer, template and Q4_1/Q8_0 formats, random weights): these test the lab's mechanics; the
// chat spec asks the default model what only a real model knows.
import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

test.describe.configure({ mode: 'serial' });

const PROMPT = 'What is the capital of France?';
let shared = null; // { link, lanes }

async function laneTexts(app) {
  return app.id('compare-lane').evaluateAll((ls) => ls.map((l) => ({
    plan: l.dataset.plan,
    text: l.querySelector('[data-testid=compare-lane-text]').textContent,
    diverged: l.querySelectorAll('.tok.diverge').length,
  })));
}

async function waitCompare(app) {
  await expect(app.id('compare-summary-row')).toHaveCount(5, { timeout: LONG });
  // Its sample size said, as the quality panel says its noise.
  await expect(app.id('compare-caveat')).toContainText('positions compared');
}

test('the compare view runs one prompt at FP16, INT8, INT4, the file\'s own setting and an INT8 KV cache in lock-step', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  // A seed that is not the page's default: the shared link has to carry it.
  await page.locator('details.sampling > summary').click();
  await app.id('seed').fill('7');
  await app.id('seed').dispatchEvent('change');
  await app.id('compare-prompt').fill(PROMPT);
  await app.id('compare-max-tokens').fill('6');
  await app.id('compare-max-tokens').dispatchEvent('change');
  await expect(app.id('compare-sampling')).toContainText('seed 7');
  // The file's own setting is a lane from the start, named as everywhere else.
  await expect(app.id('compare-lane-int4-int4-int8')).toBeChecked();
  await expect(app.id('compare-lane-int4-int4-int8').locator('xpath=..')).toContainText('As stored');
  // A fifth lane: FP16 weights with an INT8 KV cache.
  await app.id('compare-lane-fp16+kv-int8').check();
  await app.id('compare-run').click();
  await expect(app.id('compare-status')).toContainText(/preparing|reading the prompt|position/);
  // The columns stream: a lane shows tokens before the comparison is done.
  await expect(app.id('compare-lane')).toHaveCount(5, { timeout: LONG });
  await expect(app.id('compare-lane').first().locator('.tok').first()).toBeVisible({ timeout: LONG });
  await waitCompare(app);
  await app.id('compare-view').scrollIntoViewIfNeeded();
  await app.screenshot(testInfo, 'compare');
  const rows = await app.id('compare-summary-row').evaluateAll((rs) => rs.map((r) => ({
    plan: r.dataset.plan,
    kl: parseFloat(r.querySelector('[data-testid=compare-mean-kl]').textContent),
    top1: r.querySelector('[data-testid=compare-top1]').textContent,
    first: r.querySelector('[data-testid=compare-first-divergence]').textContent,
    tps: parseFloat(r.querySelector('[data-testid=compare-decode-tps]').textContent),
  })));
  console.log(`compare summaries: ${JSON.stringify(rows)}`);
  expect(rows.map((r) => r.plan)).toEqual(['fp16', 'int8', 'int4', 'int4-int4-int8', 'fp16+kv-int8']);
  expect(rows[0].kl).toBe(0);
  expect(rows[0].top1).toMatch(/^100\.0% of \d+/);
  expect(rows[0].first).toBe('none');
  // The file's own setting holds its blocks exactly (Q4_1 kept at INT4, Q8_0 at INT8), as FP16's
  // widened copy does: it is as close to FP16 as INT8 is, or closer. Every requantized lane moves.
  const kl = Object.fromEntries(rows.map((r) => [r.plan, r.kl]));
  for (const p of ['int8', 'int4', 'fp16+kv-int8']) expect(kl[p], p).toBeGreaterThan(0);
  expect(kl['int4-int4-int8']).toBeLessThanOrEqual(kl.int8);
  for (const r of rows) expect(r.tps).toBeGreaterThan(0);
  const lanes = await laneTexts(app);
  console.log(`compare lanes: ${JSON.stringify(lanes)}`);
  expect(lanes[0].text.length).toBeGreaterThan(0);
  expect(lanes[0].diverged).toBe(0);
  // A lane that FP16 disagreed with somewhere marks the disagreement, and only such lanes do.
  for (const [i, l] of lanes.entries()) expect(l.diverged > 0).toBe(rows[i].first !== 'none');
  await expect(app.id('compare-kl-chart').locator('svg')).toHaveCount(1);
  // The link to this comparison carries prompt, seed, sampling and precisions.
  await app.id('compare-share').click();
  const link = await app.id('compare-link').inputValue();
  console.log(`shared link: ${link}`);
  expect(link).toContain('seed=7');
  expect(link).toContain('lanes=int8%2Cint4%2Cint4-int4-int8%2Cfp16%2Bkv-int8');
  expect(page.url()).toBe(link);
  shared = { link, lanes };
  expect(app.errors).toEqual([]);
});

test('a shared link reproduces the same comparison', async ({ page }, testInfo) => {
  test.skip(!shared, 'needs the comparison of the previous test');
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  // The link also asks for 8-bit activations, chosen before the model is loaded.
  expect(shared.link).toContain('&act=f32');
  await page.goto(shared.link.replace('&act=f32', '&act=int8'));
  await expect(app.id('compare-pending')).toBeVisible({ timeout: LONG });
  await expect(app.id('act-int8')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('compare-prompt')).toHaveValue(PROMPT);
  await expect(app.id('compare-sampling')).toContainText('seed 7');
  await expect(app.id('model-status')).not.toContainText('starting the engine', { timeout: LONG });
  await app.loadTiny();
  // It runs by itself once the model is loaded.
  await waitCompare(app);
  await app.id('compare-view').scrollIntoViewIfNeeded();
  await app.screenshot(testInfo, 'compare-shared');
  expect(await laneTexts(app)).toEqual(shared.lanes);
  // The comparison waited for the loaded model to switch to them (a load starts at f32).
  await expect(app.id('act-int8')).toHaveAttribute('aria-pressed', 'true');
  expect(app.errors).toEqual([]);
});

test('speed panel, inspector and a mixed-precision plan', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  // Speed: one profiled decode step, per kernel, against the copy roofline.
  await app.id('speed-profile').click();
  await expect(app.id('speed-row')).toHaveCount(1, { timeout: LONG });
  // One roofline for the panel, and what limits decode here read from the profile's numbers;
  // the precision panel says the same.
  const roofline = await app.id('speed-roofline').textContent();
  expect(roofline).toMatch(/^Copy kernel on this GPU: \d+\.\d\d GB\/s/);
  const limit = await app.id('speed-limit').textContent();
  console.log(`speed limit: ${limit}`);
  expect(limit).toMatch(/^On this GPU a decode step at As stored \(INT4 layers, INT8 embeddings\) is limited by (overhead|memory|arithmetic)|no timestamp queries/);
  await expect(app.id('precision-speed-limit')).toContainText(limit);
  await expect(app.id('kernel-time-row').first()).toBeVisible();
  const kernels = await app.id('kernel-time-row').allTextContents();
  console.log(`kernel times: ${JSON.stringify(kernels)}`);
  // The tiny model's matrices are Q4_1, so they load at INT4.
  expect(kernels.some((k) => k.startsWith('matvec_int4'))).toBe(true);
  // The chart shows the largest kernels and the rest as one bar; the caption's parts add up:
  // the kernels' GPU time is a part of the timed step's wall time.
  await expect(app.id('kernel-chart').locator('svg[role=img]')).toContainText('other (');
  const caption = await app.id('kernel-times-caption').textContent();
  console.log(`kernel caption: ${caption}`);
  const [, wall, gpu, rest] = caption.match(/the step took ([\d.]+) ms wall: ([\d.]+) ms in these kernels on the GPU and ([\d.]+) ms/).map(Number);
  expect(gpu).toBeLessThanOrEqual(wall + 0.5);
  expect(Math.abs(gpu + rest - wall)).toBeLessThan(0.2 + wall * 0.01);
  // The model benchmark: prefill and greedy decode at FP16, INT8 and INT4 on the loaded model,
  // its report as JSON (what `lowbit bench model --json` prints); the plan is kept.
  // A long benchmark shows its step, the time left and Cancel, and the model's status says
  // what runs; Cancel leaves no result and the model as it was.
  await app.setBenchTokens(8, 400);
  await app.id('bench-run').click();
  await expect(app.id('bench-progress').getByTestId('run-step')).toContainText(/run \d of 3/, { timeout: LONG });
  await expect(app.id('model-status')).toContainText(/benchmarking \(step \d+ of 27\)/);
  await expect(app.id('bench-progress').getByTestId('run-left')).toContainText(/step \d+ of 27/);
  await app.id('bench-progress').scrollIntoViewIfNeeded();
  await page.screenshot({ path: testInfo.outputPath('bench-progress.png') });
  await app.id('bench-progress').getByTestId('run-cancel').click();
  await expect(app.id('bench-progress')).toHaveCount(0, { timeout: LONG });
  await app.waitReady();
  await expect(app.id('model-bench-row')).toHaveCount(0);
  await expect(app.id('precision-file')).toHaveAttribute('aria-pressed', 'true');
  await app.setBenchTokens(undefined, 4);
  await app.id('bench-run').click();
  await expect(app.id('model-bench-row')).toHaveCount(3, { timeout: LONG });
  const bench = JSON.parse(await app.id('bench-result').textContent());
  // Every precision ran 3 times, taking turns; the ratio says its spread; the roofline is the
  // profile's, measured once.
  expect(bench.repeats).toBe(3);
  for (const r of bench.rows) expect(r.decode_runs.length).toBe(3);
  await expect(app.id('bench-ratio')).toContainText(/median of 3 runs, \d+\.\d\d–\d+\.\d\d×/);
  expect(roofline).toContain(`${bench.copy_gbps.toFixed(2)} GB/s`);
  console.log(`model bench: ${JSON.stringify(bench.rows.map((r) => [r.precision, r.prefill_tokens_per_second, r.decode_tokens_per_second]))}`);
  expect(bench.rows.map((r) => r.precision)).toEqual(['fp16', 'int8', 'int4']);
  expect([bench.prompt_tokens, bench.decode_tokens]).toEqual([8, 4]);
  for (const r of bench.rows) {
    expect(r.decode_tokens_per_second).toBeGreaterThan(0);
    expect(r.prefill_tokens_per_second).toBeGreaterThan(0);
    // 2 layers: 9 dispatches a layer (attention is 4) + 3; nothing made per token after the first.
    expect(r.dispatches_per_token).toBe(21);
    expect([r.buffers_per_token, r.bind_groups_per_token]).toEqual([0, 0]);
  }
  expect(bench.rows[2].bytes_per_token).toBeLessThan(bench.rows[0].bytes_per_token / 2);
  await expect(app.id('bench-ratio')).toContainText('INT4 decodes');
  // Decode chains its steps: 4 tokens read back in batches of 1, 2 and 1, not one by one; with
  // "one token at a time" every token is a round trip. Host time per token is reported either way.
  expect(bench.chain).toBe(16);
  for (const r of bench.rows) expect([r.activations, r.round_trips_per_token]).toEqual(['f32', 0.75]);
  await expect(app.id('model-bench-table').locator('caption')).toContainText('read back a batch at a time');
  await app.id('bench-one-at-a-time').check();
  await app.id('bench-run').click();
  await expect(app.id('model-bench-table').locator('caption')).toContainText('each token read back before the next step', { timeout: LONG });
  const single = JSON.parse(await app.id('bench-result').textContent());
  expect(single.chain).toBe(1);
  for (const r of single.rows) expect(r.round_trips_per_token).toBe(1);
  console.log(`host ms per token, chained then one at a time: ${JSON.stringify([bench, single].map((b) => b.rows.map((r) => r.host_ms_per_token)))}`);
  await expect(app.id('model-bench-host-ms')).toHaveCount(3);
  await app.id('bench-one-at-a-time').uncheck();
  await expect(app.id('precision-file')).toHaveAttribute('aria-pressed', 'true');
  // Decode speed as the context grows, per KV format: f16 and INT8 (this model's rows of 32
  // cannot hold rotated INT4's units of 64), at the contexts a 2,048-token cache measures in
  // (the last the fullest it allows, 16 tokens short of it).
  await expect(page.locator('[data-testid=sweep-kv][data-kv=int4-rot]')).toBeDisabled();
  await expect(page.locator('[data-testid=sweep-kv][data-kv=int8]')).toBeChecked();
  await expect(app.id('sweep-run')).toHaveText('Measure at 256, 1024, 2030');
  await app.id('sweep-run').click();
  await expect(app.id('sweep-row')).toHaveCount(2, { timeout: LONG });
  expect(await app.id('sweep-row').evaluateAll((rows) => rows.map((r) => r.dataset.kv))).toEqual(['f16', 'int8']);
  const sweep = await app.id('sweep-tps').allTextContents();
  console.log(`decode tok/s from 256, 1024 and 2030 tokens, f16 then int8: ${JSON.stringify(sweep)}`);
  expect(sweep).toHaveLength(6);
  for (const t of sweep) expect(Number(t)).toBeGreaterThan(0);
  await expect(app.id('sweep-kept').first()).toHaveText(/^\d+\.\d\d×$/);
  await expect(app.id('sweep-chart').locator('svg[role=img]')).toContainText('tokens already in the KV cache');
  await expect(app.id('sweep-chart')).toContainText('int8 KV');
  // The plan and the KV format stay as they were.
  await expect(app.id('precision-file')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('kv-f32')).toHaveAttribute('aria-pressed', 'true');
  await app.id('speed-panel').scrollIntoViewIfNeeded();
  await app.screenshot(testInfo, 'speed');
  // Inspector: a Q4_1 matrix; INT4 finds the file's own blocks again (zero error).
  await app.id('inspector-tensor').selectOption('blk.0.ffn_down.weight');
  await app.id('inspector-run').click();
  await expect(app.id('inspector-histogram').locator('svg')).toHaveCount(1, { timeout: LONG });
  await expect(app.id('inspector-scales').locator('svg')).toHaveCount(4);
  await expect(app.id('inspector-error').locator('svg')).toHaveCount(5);
  await expect(app.id('inspector-summary')).toContainText('Q4_1');
  await expect(app.id('inspector-error-row').filter({ hasText: 'INT4' })).toContainText('0.00e0');
  // Every layer's output error at INT8 and INT4 against FP16, as a heatmap.
  await app.id('inspector-layers').click();
  await expect(app.id('inspector-heatmap').locator('svg')).toHaveCount(1, { timeout: LONG });
  await expect(app.id('inspector-heatmap')).toContainText('INT4');
  // Its colour scale, lowest and highest error at the ends.
  await expect(app.id('inspector-heatmap').getByTestId('heat-scale')).toBeVisible();
  await expect(app.id('inspector-heatmap').getByTestId('heat-scale')).toContainText('logarithmic');
  await app.id('inspector').scrollIntoViewIfNeeded();
  await app.screenshot(testInfo, 'inspector');
  // KV cache at INT8: 9 words per 32 values instead of 32. The tiny model caches 2 layers x
  // (K + V) x 32 values a token: 512 bytes at f32, 144 at INT8.
  await expect(app.id('kv-bytes')).toContainText('1.0 MB for 2048 tokens at f32');
  await app.id('kv-int8').click();
  await expect(app.id('kv-int8')).toHaveAttribute('aria-pressed', 'true', { timeout: LONG });
  await expect(app.id('kv-bytes')).toContainText('0.3 MB for 2048 tokens at int8');
  // INT4 and INT3 store units of 64 values: the tiny model's rows of 32 cannot, and the page says
  // why instead of offering them.
  for (const kv of ['int4', 'int3', 'int4-rot', 'int3-rot']) {
    await expect(app.id(`kv-${kv}`)).toBeDisabled();
    await expect(app.id(`kv-${kv}`)).toHaveAttribute('title', /multiple of 64 values; this model has 32/);
  }
  await expect(app.id('kv-int8')).toHaveAttribute('title', /up to 2048 tokens of context fit/);
  // A reply with the INT8 cache.
  await app.setMaxTokens(4);
  const reply = await app.send('Hi!');
  await app.waitReply(reply);
  expect((await reply.getByTestId('message-text').textContent()).trim().length).toBeGreaterThan(0);
  // Mixed precision: INT8 attention, INT4 feed-forward, FP16 embeddings / output head.
  await page.locator('details.mixed > summary').click();
  await app.id('mix-attention').selectOption('int8');
  await app.id('mix-ffn').selectOption('int4');
  await app.id('mix-embeddings').selectOption('fp16');
  await expect(app.id('mix-bytes')).toContainText('embeddings FP16');
  await app.id('mix-apply').click();
  await expect(app.id('weights-bytes')).toContainText('attention INT8 · feed-forward INT4 · embeddings FP16', { timeout: LONG });
  await app.waitReady();
  for (const p of ['fp16', 'int8', 'int4', 'file']) await expect(app.id(`precision-${p}`)).toHaveAttribute('aria-pressed', 'false');
  await app.screenshot(testInfo, 'mixed');
  expect(app.errors).toEqual([]);
});
