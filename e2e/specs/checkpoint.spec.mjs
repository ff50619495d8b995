// Hugging Face checkpoints in the page. A model id typed into the address field downloads the
// repository's config.json, tokenizer files and safetensors shards, converts them to GGUF in the
// worker (lowbit::hf) and loads the result. Hugging Face is played by the test (no internet
// here): the checkpoint is the tiny test model written as BF16 safetensors in two shards by
// `lowbit checkpoint` (scripts/test.sh), and any file the repository lacks answers 404, as
// Hugging Face does. The quality panel then measures FP16, INT8 and INT4 against BF16 weights; the
// checkpoint is cached as one entry and loads again with the network gone; hostile checkpoints
// (engine/tests/suite/hostile.rs writes them) are refused by name, the model loaded before stays, and
// nothing of theirs is cached.
import { test, expect } from '@playwright/test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppPage, LONG, TINY_MODEL, huggingFaceFile } from '../pages/app.mjs';

const TINY_DIR = fileURLToPath(new URL('../../target/hf-tiny/', import.meta.url));
const HOSTILE = fileURLToPath(new URL('../../target/hostile-files/checkpoints/', import.meta.url));
const REPO = 'lowbit-test/tiny-bf16';

/// Plays Hugging Face's `resolve/main/` for the test repositories; records each path asked for.
async function playHuggingFace(context, asked) {
  await context.route('https://huggingface.co/**', (route) => {
    const path = new URL(route.request().url()).pathname;
    asked.push(path);
    const m = path.match(/^\/([^/]+)\/([^/]+)\/resolve\/main\/([^/]+)$/);
    let file = null;
    if (m && `${m[1]}/${m[2]}` === REPO) file = `${TINY_DIR}${m[3]}`;
    else if (m && m[1] === 'lowbit-hostile') file = `${HOSTILE}${m[2]}/${m[3]}`;
    if (file && existsSync(file)) return route.fulfill(huggingFaceFile(readFileSync(file)));
    return route.fulfill({ status: 404, body: 'Entry not found', headers: { 'access-control-allow-origin': '*', 'content-type': 'text/plain' } });
  });
}

test('a Hugging Face model id loads its BF16 checkpoint, measured and cached', async ({ page, context }, testInfo) => {
  expect(existsSync(`${TINY_DIR}config.json`), `${TINY_DIR} is missing: scripts/test.sh writes it`).toBe(true);
  const asked = [];
  await playHuggingFace(context, asked);
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.id('model-url-input').fill(REPO);
  await app.id('model-url-load').click();
  await expect(app.id('model-status')).toContainText('ready: tiny-bf16', { timeout: LONG });
  // The small files first, the optional ones asked for and missing (404), then each shard the
  // index lists.
  const base = `/${REPO}/resolve/main/`;
  expect(asked).toEqual([
    'config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'chat_template.jinja',
    'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors',
  ].map((f) => base + f));
  await expect(app.id('card-architecture')).toHaveText('llama');
  await expect(app.id('card-dtypes')).toContainText('BF16');
  await expect(app.id('chat-template')).toHaveText('from the file');
  await expect(app.id('quality-source-note')).toContainText('BF16: every precision here is a real reduction');
  await app.screenshot(testInfo, 'checkpoint-loaded');

  // The lab measures every precision against the checkpoint's own weights.
  await app.id('quality-max-tokens').fill('32');
  await app.id('quality-max-tokens').dispatchEvent('change');
  await app.id('quality-run').click();
  const rows = app.id('quality-row');
  await expect(rows).toHaveCount(3, { timeout: LONG });
  const result = await rows.evaluateAll((rs) => rs.map((r) => ({
    p: r.dataset.precision,
    ppl: parseFloat(r.querySelector('[data-testid=quality-ppl]').textContent),
    kl: parseFloat(r.querySelector('[data-testid=quality-kl]').textContent),
  })));
  console.log(`quality from BF16 weights: ${JSON.stringify(result)}`);
  expect(result.map((r) => r.p)).toEqual(['fp16', 'int8', 'int4']);
  expect(result[0].kl).toBe(0);
  expect(result[1].kl).toBeGreaterThan(0);
  expect(result[2].kl).toBeGreaterThan(result[1].kl);
  await app.id('quality-panel').scrollIntoViewIfNeeded();
  await app.screenshot(testInfo, 'checkpoint-quality');

  // It replies, then it is in the cache as one entry and loads from there without a network.
  await app.setMaxTokens(3);
  await app.waitReply(await app.send('Hello!'));
  await page.reload();
  await expect(app.id('model-status')).not.toContainText('starting the engine', { timeout: 60_000 });
  const entry = app.id('cached-model').filter({ hasText: 'tiny-bf16' });
  await expect(entry).toHaveCount(1);
  await expect(app.id('cached-model')).toHaveCount(1);
  await context.unroute('https://huggingface.co/**');
  await context.route('https://huggingface.co/**', (route) => route.abort('internetdisconnected'));
  await entry.getByRole('button', { name: /^Load/ }).click();
  await expect(app.id('model-status')).toContainText('ready: tiny-bf16', { timeout: LONG });
  // Asked for by id again, it asks the network for nothing either (the manifest lists its files,
  // so the optional ones it lacks are not looked for).
  await app.id('model-url-input').fill(REPO);
  await app.id('model-url-load').click();
  await expect(app.id('model-status')).toContainText('ready: tiny-bf16', { timeout: LONG });
  await expect(app.id('error-message')).toHaveCount(0);
  // Deleting it takes every file of it.
  await entry.getByTestId('cached-delete').click();
  await expect(app.id('cached-model')).toHaveCount(0);
  const left = await page.evaluate(async () => (await (await caches.open('lowbit-models-v1')).keys()).map((r) => r.url));
  expect(left).toEqual([]);
  expect(app.errors).toEqual([]);
});

test('hostile checkpoints are refused by name; the model stays and nothing is cached', async ({ page, context }) => {
  expect(existsSync(HOSTILE), `${HOSTILE} is missing: run cargo test -p lowbit-engine --test suite hostile first`).toBe(true);
  const cases = readdirSync(HOSTILE).sort();
  expect(cases.length).toBeGreaterThan(10);
  await playHuggingFace(context, []);
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  const seen = [];
  const wrong = [];
  for (const c of cases) {
    // A file the repository lacks is Hugging Face's 404 in the page (the reader's own words at
    // the command line).
    const missing = { 'no-config': 'config.json', 'no-tokenizer': 'tokenizer.json' }[c];
    const [want, kind] = missing ? [`${missing} answered HTTP 404`, 'HttpStatus'] : [readFileSync(`${HOSTILE}${c}/expect.txt`, 'utf8'), 'BadFile'];
    await app.id('model-url-input').fill(`lowbit-hostile/${c}`);
    await app.id('model-url-load').click();
    const banner = app.id('error-message');
    await expect(banner).toBeVisible({ timeout: LONG });
    const [text, got] = [await banner.textContent(), await banner.getAttribute('data-kind')];
    seen.push(`${c} ${got}: ${text}`);
    if (!text.includes(want) || got !== kind) wrong.push(`${c}: expected '${want}' (${kind}), got ${got}: ${text}`);
    await app.id('error-dismiss').click();
    await expect(banner).toHaveCount(0);
    await expect(app.id('model-status')).toContainText(`ready: ${TINY_MODEL}`);
  }
  console.log(`${cases.length} hostile checkpoints:\n  ${seen.join('\n  ')}`);
  expect(wrong).toEqual([]);
  const cached = await page.evaluate(async () => (await (await caches.open('lowbit-models-v1')).keys()).map((r) => r.url));
  expect(cached.filter((u) => u.includes('lowbit-hostile'))).toEqual([]);
  expect(app.errors).toEqual([]);
});

test('a checkpoint opens from its folder on the disk, or from its files', async ({ page }) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  // The folder picker: the files the checkpoint reads go to the worker, the folder names it.
  await app.id('model-folder-input').setInputFiles(TINY_DIR);
  await expect(app.id('model-status')).toContainText('ready: hf-tiny', { timeout: LONG });
  await expect(app.id('card-dtypes')).toContainText('BF16');
  // The same files picked together (or dropped) instead.
  await app.id('model-file-input').setInputFiles(readdirSync(TINY_DIR).map((f) => `${TINY_DIR}${f}`));
  await expect(app.id('model-status')).toContainText('ready: checkpoint', { timeout: LONG });
  // Each is cached as a file the user opened (the converted model).
  await expect(app.id('cached-model')).toHaveCount(2);
  await expect(app.id('cached-models')).toContainText('hf-tiny');
  expect(app.errors).toEqual([]);
});

test('a cancelled checkpoint download is kept as unfinished and finishes from the cache entry', async ({ page, context }) => {
  const asked = [];
  await playHuggingFace(context, asked);
  // The second shard answers after a pause, in which the download is cancelled.
  await context.route(`https://huggingface.co/${REPO}/resolve/main/model-00002-of-00002.safetensors`, async (route) => {
    asked.push(new URL(route.request().url()).pathname);
    await new Promise((r) => setTimeout(r, 3000));
    await route.fulfill(huggingFaceFile(readFileSync(`${TINY_DIR}model-00002-of-00002.safetensors`)));
  });
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.id('model-url-input').fill(REPO);
  await app.id('model-url-load').click();
  await expect.poll(() => asked.some((p) => p.endsWith('model-00002-of-00002.safetensors')), { timeout: LONG }).toBe(true);
  await app.id('load-cancel').click();
  await expect(app.id('model-status')).not.toContainText('ready', { timeout: LONG });
  const entry = app.id('cached-model').filter({ hasText: 'tiny-bf16 (download not finished)' });
  await expect(entry).toHaveCount(1, { timeout: LONG });
  await expect(app.id('cached-model')).toHaveCount(1);
  // Its Load finishes the download (the files it has come from the cache).
  const before = asked.length;
  await entry.getByRole('button', { name: /^Load/ }).click();
  await expect(app.id('model-status')).toContainText('ready: tiny-bf16', { timeout: LONG });
  expect(asked.slice(before).filter((p) => p.endsWith('.safetensors'))).toEqual([`/${REPO}/resolve/main/model-00002-of-00002.safetensors`]);
  await expect(app.id('cached-model').filter({ hasText: 'tiny-bf16' })).toHaveText(/^tiny-bf16[^(]/);
  expect(app.errors).toEqual([]);
});
