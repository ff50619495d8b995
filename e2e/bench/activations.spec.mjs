// What 8-bit activations buy in the page: the bench panel's benchmark with "8-bit activations too"
// on the default model (INT8 and INT4 each with f32 and 8-bit activations, beside FP16), the
// precisions taking turns. Not a test: it prints prefill and decode tok/s per row and the
// INT4 A8 / INT4 decode ratio per run.
//   cd e2e && npx playwright test --config bench.config.mjs activations
//   PROMPT=128 TOKENS=32 (the defaults)
import { test } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

const PROMPT = Number(process.env.PROMPT || 128);
const TOKENS = Number(process.env.TOKENS || 32);

test('8-bit activations beside f32 ones', async ({ page }) => {
  test.setTimeout(20 * LONG);
  const app = new AppPage(page);
  await app.open();
  await app.loadDefault();
  await app.setBenchTokens(PROMPT, TOKENS);
  await app.id('bench-acts').check();
  await app.id('bench-run').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=bench-result]'), null, { timeout: 18 * LONG });
  await app.waitReady();
  const b = JSON.parse(await app.id('bench-result').textContent());
  for (const r of b.rows) {
    const range = (v) => `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}`;
    console.log(`${r.precision} ${r.activations}: prefill ${r.prefill_tokens_per_second.toFixed(2)} (${range(r.prefill_runs)}), decode ${r.decode_tokens_per_second.toFixed(2)} (${range(r.decode_runs)}) tok/s`);
  }
  const row = (p, a) => b.rows.find((r) => r.precision === p && r.activations === a);
  const ratios = row('int4', 'int8').decode_runs.map((v, i) => (v / row('int4', 'f32').decode_runs[i]).toFixed(2));
  console.log(`INT4 A8 / INT4 decode per run: ${ratios.join(', ')} (${b.adapter.name}, matvec ${b.adapter.matvec_kernel})`);
});
