// What a CPU round trip per decode token costs in the page: the bench panel's benchmark with
// decode chained (tokens read back a batch at a time) and with "one token at a time", taking
// turns, on the tiny model (where the round trip is the largest share of a step) and the default
// model. Not a test: it prints decode tok/s, round trips and host ms per token.
//   cd e2e && npx playwright test --config bench.config.mjs round-trips
//   MODELS=tiny TOKENS=64 ROUNDS=2 (the defaults)
import { test } from '@playwright/test';
import { AppPage, LONG } from '../pages/app.mjs';

const TOKENS = Number(process.env.TOKENS || 64);
const ROUNDS = Number(process.env.ROUNDS || 2);
const MODELS = (process.env.MODELS || 'tiny').split(',');

test('decode chained vs one token at a time', async ({ page }) => {
  test.setTimeout(12 * LONG);
  const app = new AppPage(page);
  await app.open();
  for (const model of MODELS) {
    await (model === 'tiny' ? app.loadTiny() : app.loadDefault());
    await app.id('bench-prompt-tokens').fill('16');
    await app.id('bench-prompt-tokens').dispatchEvent('change');
    await app.id('bench-decode-tokens').fill(String(TOKENS));
    await app.id('bench-decode-tokens').dispatchEvent('change');
    const seen = { chained: [], single: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of ['single', 'chained']) {
        await app.id('bench-one-at-a-time').setChecked(mode === 'single');
        const before = await app.id('bench-result').textContent().catch(() => '');
        await app.id('bench-run').click();
        await page.waitForFunction((b) => {
          const el = document.querySelector('[data-testid=bench-result]');
          return el && el.textContent !== b;
        }, before, { timeout: 4 * LONG });
        await app.waitReady();
        seen[mode].push(JSON.parse(await app.id('bench-result').textContent()));
      }
    }
    for (const mode of ['single', 'chained']) {
      for (const b of seen[mode]) {
        const rows = b.rows.map((r) => `${r.precision} ${r.decode_tokens_per_second.toFixed(2)} tok/s, ${r.round_trips_per_token.toFixed(3)} trips, ` +
          `${r.host_ms_per_token == null ? '-' : r.host_ms_per_token.toFixed(2)} host ms`);
        console.log(`${model} ${mode} (chain ${b.chain}, ${b.decode_tokens} tokens, ${b.adapter.name}): ${rows.join('; ')}`);
      }
    }
  }
});
