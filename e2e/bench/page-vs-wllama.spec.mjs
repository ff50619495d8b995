// lowbit's page benchmark against wllama (llama.cpp compiled to wasm, on the CPU) on the same GGUF,
// the same prompt (text that both tokenize to the same ids) and the same number of greedy tokens, in the same headless Chromium,
// with 1 and 2 wllama threads (the page is cross-origin isolated, so threads work). The page runs
// every precision RUNS times (its benchmark's repeats, the precisions taking turns); wllama runs
// RUNS times per thread count, taking turns too. Each figure is a median with its range; a ratio
// is the medians' quotient, its range from the lowest over the highest to the highest over the
// lowest (the two runtimes' runs are not paired: they run one after the other).
// Not a test:
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

/// Median, lowest and highest of a list of numbers.
function spread(v) {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: m, min: s[0], max: s[s.length - 1], runs: s.length };
}

test('lowbit (every precision) vs wllama, default model', async ({ page, context }) => {
  test.setTimeout(2 * LONG);
  const app = new AppPage(page);
  await app.open();
  await app.loadDefault();
  await app.setBenchTokens(PROMPT_TOKENS, TOKENS);
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
  const runs = lowbit.repeats;
  const wllama = THREADS.map((threads) => ({ threads, prefill_runs: [], decode_runs: [] }));
  for (let run = 0; run < runs; run++) {
    for (const w of wllama) {
      const r = await peer.evaluate((a) => window.wllamaBench(a), { model: `/models/${DEFAULT_MODEL}`, threads: w.threads, prompt: lowbit.prompt_text, tokens: TOKENS });
      expect(r.timings.predicted_n).toBe(TOKENS);
      expect(r.timings.prompt_n).toBe(PROMPT_TOKENS);
      w.prefill_runs.push(r.timings.prompt_per_second);
      w.decode_runs.push(r.timings.predicted_per_second);
    }
  }
  for (const w of wllama) {
    w.prefill_tokens_per_second = spread(w.prefill_runs).median;
    w.decode_tokens_per_second = spread(w.decode_runs).median;
  }

  const rows = [
    ...lowbit.rows.map((r) => ({ runtime: `lowbit ${r.precision.toUpperCase()}`, prefill: spread(r.prefill_runs), decode: spread(r.decode_runs) })),
    ...wllama.map((w) => ({ runtime: `wllama 3.8.1 CPU, ${w.threads} thread${w.threads > 1 ? 's' : ''}`, prefill: spread(w.prefill_runs), decode: spread(w.decode_runs) })),
  ];
  const int4 = lowbit.rows.find((r) => r.precision === 'int4');
  const quot = (a, b) => ({ median: a.median / b.median, min: a.min / b.max, max: a.max / b.min, runs: Math.min(a.runs, b.runs) });
  const ratios = wllama.map((w) => ({
    threads: w.threads,
    decode: quot(spread(int4.decode_runs), spread(w.decode_runs)),
    prefill: quot(spread(int4.prefill_runs), spread(w.prefill_runs)),
  }));
  const report = { date: new Date().toISOString().slice(0, 10), adapter: lowbit.adapter, model: DEFAULT_MODEL, prompt_tokens: PROMPT_TOKENS, decode_tokens: TOKENS, runs, rows, int4_over_wllama: ratios, lowbit };
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/page-vs-wllama.json', JSON.stringify(report, null, 1));
  console.log(`adapter: ${lowbit.adapter.name} (${lowbit.adapter.backend}); prompt ${PROMPT_TOKENS} tokens, ${TOKENS} decoded greedily`);
  const f = (s, d) => `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})`;
  for (const r of rows) console.log(`${r.runtime.padEnd(28)} prefill ${f(r.prefill, 2).padStart(20)} tok/s   decode ${f(r.decode, 2).padStart(20)} tok/s`);
  for (const q of ratios) console.log(`lowbit INT4 ÷ wllama ${q.threads} thread(s), medians' quotient (extremes' quotients) over ${runs} runs each: decode ${f(q.decode, 3)}×, prefill ${f(q.prefill, 3)}×`);
});
