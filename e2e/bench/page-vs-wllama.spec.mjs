// lowbit's page benchmark against wllama (llama.cpp compiled to wasm, on the CPU) on the same GGUF,
// the same prompt (text that both tokenize to the same ids) and the same number of greedy tokens, in the same headless Chromium,
// with 1 and 2 wllama threads (the page is cross-origin isolated, so threads work). Not a test:
// nothing here can fail on speed. Prints a table and writes bench-results/page-vs-wllama.json
// (scripts/perf.sh puts it in README).
//   scripts/bench-page.sh                      (after scripts/test.sh has built dist/)
//   PROMPT_TOKENS=128 TOKENS=64 THREADS=1,2 scripts/bench-page.sh
import { test, expect } from '@playwright/test';
import { mkdirSync, writeFileSync } from 'node:fs';
import { AppPage, DEFAULT_MODEL, LONG } from '../pages/app.mjs';

const PROMPT_TOKENS = Number(process.env.PROMPT_TOKENS || 128);
const TOKENS = Number(process.env.TOKENS || 64);
const THREADS = (process.env.THREADS || '1,2').split(',').map(Number);

test('lowbit (every precision) vs wllama, default model', async ({ page, context }) => {
  test.setTimeout(2 * LONG);
  const app = new AppPage(page);
  await app.open();
  await app.loadDefault();
  await app.id('bench-prompt-tokens').fill(String(PROMPT_TOKENS));
  await app.id('bench-prompt-tokens').dispatchEvent('change');
  await app.id('bench-decode-tokens').fill(String(TOKENS));
  await app.id('bench-decode-tokens').dispatchEvent('change');
  await app.id('bench-run').click();
  await expect(app.id('model-bench-row')).toHaveCount(3, { timeout: LONG });
  const lowbit = JSON.parse(await app.id('bench-result').textContent());
  expect(lowbit.prompt_tokens).toBe(PROMPT_TOKENS);
  await page.close();

  const peer = await context.newPage();
  peer.on('console', (m) => { if (m.type() === 'error') console.log(`wllama: ${m.text()}`); });
  await peer.goto('/peer/wllama.html');
  await expect(peer.locator('#status')).toHaveText('ready');
  expect(await peer.evaluate(() => crossOriginIsolated)).toBe(true);
  const wllama = [];
  for (const threads of THREADS) {
    const r = await peer.evaluate((a) => window.wllamaBench(a), { model: `/models/${DEFAULT_MODEL}`, threads, prompt: lowbit.prompt_text, tokens: TOKENS });
    expect(r.timings.predicted_n).toBe(TOKENS);
    expect(r.timings.prompt_n).toBe(PROMPT_TOKENS);
    wllama.push({ threads: r.threads, prefill_tokens_per_second: r.timings.prompt_per_second, decode_tokens_per_second: r.timings.predicted_per_second });
  }

  const rows = [
    ...lowbit.rows.map((r) => ({ runtime: `lowbit ${r.precision.toUpperCase()}`, prefill: r.prefill_tokens_per_second, decode: r.decode_tokens_per_second })),
    ...wllama.map((w) => ({ runtime: `wllama 3.8.1 CPU, ${w.threads} thread${w.threads > 1 ? 's' : ''}`, prefill: w.prefill_tokens_per_second, decode: w.decode_tokens_per_second })),
  ];
  const int4 = lowbit.rows.find((r) => r.precision === 'int4');
  const ratios = wllama.map((w) => ({
    threads: w.threads,
    decode: int4.decode_tokens_per_second / w.decode_tokens_per_second,
    prefill: int4.prefill_tokens_per_second / w.prefill_tokens_per_second,
  }));
  const report = { date: new Date().toISOString().slice(0, 10), adapter: lowbit.adapter, model: DEFAULT_MODEL, prompt_tokens: PROMPT_TOKENS, decode_tokens: TOKENS, rows, int4_over_wllama: ratios, lowbit };
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/page-vs-wllama.json', JSON.stringify(report, null, 1));
  console.log(`adapter: ${lowbit.adapter.name} (${lowbit.adapter.backend}); prompt ${PROMPT_TOKENS} tokens, ${TOKENS} decoded greedily`);
  for (const r of rows) console.log(`${r.runtime.padEnd(28)} prefill ${r.prefill.toFixed(2).padStart(8)} tok/s   decode ${r.decode.toFixed(2).padStart(7)} tok/s`);
  for (const q of ratios) console.log(`lowbit INT4 ÷ wllama ${q.threads} thread(s): decode ${q.decode.toFixed(3)}×, prefill ${q.prefill.toFixed(3)}×`);
});
