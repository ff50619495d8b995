// The bad-input matrix in the page: every file engine/tests/suite/hostile.rs refuses at the command
// line (it writes each to target/hostile-files/ with the words its error must contain; `cargo
// test` runs before the e2e suite in scripts/test.sh), opened in the page with the file picker: a
// named error in the banner, the loaded model and the conversation kept, the page usable. Then the
// two files that load but must say something: a chat template that loops (ChatML instead, and the
// card says why) and NaN weights (a quality run and a reply name them instead of printing NaN).
import { test, expect } from '@playwright/test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppPage, LONG, TINY_MODEL } from '../pages/app.mjs';

const DIR = fileURLToPath(new URL('../../target/hostile-files/', import.meta.url));

test('every hostile file is refused by name; the model and the conversation stay', async ({ page }, testInfo) => {
  expect(existsSync(DIR), `${DIR} is missing: run cargo test -p lowbit-engine --test suite hostile first`).toBe(true);
  const cases = readdirSync(DIR).filter((f) => f.endsWith('.gguf')).sort();
  expect(cases.length).toBeGreaterThan(30);
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.setMaxTokens(3);
  await app.waitReply(await app.send('Hello!'));
  const seen = [];
  const wrong = [];
  for (const f of cases) {
    const want = readFileSync(`${DIR}${f.replace(/\.gguf$/, '.expect')}`, 'utf8');
    const t0 = Date.now();
    await app.id('model-file-input').setInputFiles(`${DIR}${f}`);
    const banner = app.id('error-message');
    await expect(banner).toBeVisible({ timeout: LONG });
    const [text, kind] = [await banner.textContent(), await banner.getAttribute('data-kind')];
    seen.push(`${f} (${Date.now() - t0} ms) ${kind}: ${text}`);
    if (!want.split('|').some((w) => text.includes(w)) || kind !== 'BadFile') wrong.push(`${f}: expected '${want}' (BadFile), got ${kind}: ${text}`);
    await app.id('error-dismiss').click();
    await expect(banner).toHaveCount(0);
    await expect(app.id('model-status')).toContainText(`ready: ${TINY_MODEL}`);
  }
  console.log(`${cases.length} hostile files:\n  ${seen.join('\n  ')}`);
  expect(wrong).toEqual([]);
  // Nothing was cached, the conversation is all there, and the model still answers.
  await expect(app.id('cached-model')).toHaveCount(1);
  await expect(app.id('user-message')).toHaveCount(1);
  const reply = await app.send('Still there?');
  await app.waitReply(reply);
  await expect(reply.getByTestId('message-text')).not.toBeEmpty();

  // A template that loops: the file loads with ChatML, and the card says why.
  await app.id('model-file-input').setInputFiles(`${DIR}loads/template-loop.gguf`);
  await expect(app.id('model-status')).toContainText('ready: template-loop.gguf', { timeout: LONG });
  await expect(app.id('chat-template')).toContainText('ChatML instead');
  await expect(app.id('chat-template')).toContainText('fuel');
  // NaN weights: a quality run and a reply say so, and the page stays usable.
  await app.id('model-file-input').setInputFiles(`${DIR}loads/nan.gguf`);
  await expect(app.id('model-status')).toContainText('ready: nan.gguf', { timeout: LONG });
  await app.id('quality-max-tokens').fill('8');
  await app.id('quality-max-tokens').dispatchEvent('change');
  await app.id('quality-run').click();
  await expect(app.id('error-message')).toContainText('not finite numbers', { timeout: LONG });
  await app.id('error-dismiss').click();
  await app.send('Hi');
  await expect(app.id('error-message')).toContainText("the logits of the reply's first token are not finite numbers", { timeout: LONG });
  await app.screenshot(testInfo, 'nan');
  await expect(app.id('model-status')).toContainText('ready: nan.gguf');
  expect(app.errors).toEqual([]);
});

// A file larger than the worker's memory can hold (its 32-bit WebAssembly memory ends at 4 GiB) is
// refused from its size, before a byte is read: here a 3.4 GB download (the server's answer is
// played by the test, its Content-Length is what matters). The model loaded before stays.
test('a file too large for the page is refused before it is read', async ({ page, context }) => {
  await context.route('**/models/huge.gguf', (route) => route.fulfill({
    status: 200,
    body: Buffer.alloc(1024),
    headers: { 'content-type': 'application/octet-stream', 'content-length': '3400000000' },
  }));
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.id('model-url-input').fill('models/huge.gguf');
  await app.id('model-url-load').click();
  const banner = app.id('error-message');
  await expect(banner).toHaveAttribute('data-kind', 'FileTooLarge', { timeout: LONG });
  await expect(banner).toContainText('huge.gguf is 3.40 GB');
  await expect(banner).toContainText('files up to 2.15 GB');
  await expect(app.id('model-status')).toContainText(`ready: ${TINY_MODEL}`);
  await expect(app.id('cached-model')).toHaveCount(1);
  expect(app.errors).toEqual([]);
});
