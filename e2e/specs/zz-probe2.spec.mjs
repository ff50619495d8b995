import { test, expect } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';
test('probe model bench', async ({ page }) => {
  test.setTimeout(LONG);
  const app = new AppPage(page);
  await app.open();
  await app.loadDefault();
  await app.id('bench-prompt-tokens').fill(process.env.PT || '16');
  await app.id('bench-prompt-tokens').dispatchEvent('change');
  await app.id('bench-decode-tokens').fill(process.env.DT || '24');
  await app.id('bench-decode-tokens').dispatchEvent('change');
  await app.id('bench-run').click();
  await expect(app.id('model-bench-row')).toHaveCount(3, { timeout: LONG });
  const b = JSON.parse(await app.id('bench-result').textContent());
  const r = Object.fromEntries(b.rows.map((x) => [x.precision, x]));
  console.log(`matvec ${b.adapter.matvec_kernel}; decode fp16 ${r.fp16.decode_tokens_per_second.toFixed(2)} int8 ${r.int8.decode_tokens_per_second.toFixed(2)} int4 ${r.int4.decode_tokens_per_second.toFixed(2)}; int4/fp16 ${(r.int4.decode_tokens_per_second / r.fp16.decode_tokens_per_second).toFixed(2)} int8/fp16 ${(r.int8.decode_tokens_per_second / r.fp16.decode_tokens_per_second).toFixed(2)}; prefill ${b.rows.map((x) => x.prefill_tokens_per_second.toFixed(1)).join(' ')}`);
  for (const x of b.rows) console.log(x.precision, JSON.stringify(x.kernels.slice(0, 4).map((k) => [k.kernel, k.ms.toFixed(1)])));
});
