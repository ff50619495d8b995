// The privacy promise, proven: from opening the page through loading a model three ways (the
// default, a file, a URL), chatting, a comparison and a quality run, every request the page and
// its engine worker make goes to the page's own origin, except the model URLs the user typed
// (on Hugging Face, answered here by a local stand-in). No content-security-policy violation
// happens on the way; a URL on any other host is refused with the reason before any request. The
// page is served with the headers a static deployment ships (www/_headers).
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppPage, LONG, TINY_MODEL, huggingFaceFile } from '../pages/app.mjs';
import { shippedHeaders } from '../headers.mjs';

const tinyPath = fileURLToPath(new URL(`../../www/models/${TINY_MODEL}`, import.meta.url));
const STAND_IN = 'https://huggingface.co/lowbit-test/stand-in/resolve/main/stand-in.gguf';
const GATED = 'https://huggingface.co/lowbit-test/gated/resolve/main/gated.gguf';

test('nothing leaves the page but the model URL the user typed', async ({ page, context }, testInfo) => {
  const requests = [];
  context.on('request', (r) => requests.push(r.url()));
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  // Hugging Face, played by the test model (the machine has no internet, and the test must not
  // depend on it); CORS as Hugging Face answers.
  const tiny = readFileSync(tinyPath);
  await context.route('https://huggingface.co/**', (route) => route.fulfill(route.request().url() === GATED ? {
    status: 403,
    body: 'Access to model lowbit-test/gated is restricted.',
    headers: { 'content-type': 'text/plain', 'access-control-allow-origin': '*' },
  } : huggingFaceFile(tiny)));
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  // The page arrives with the shipped headers, CSP first.
  const response = await page.request.get('/');
  const shipped = shippedHeaders();
  for (const [k, v] of Object.entries(shipped)) expect(response.headers()[k.toLowerCase()]).toBe(v);
  expect(shipped['Content-Security-Policy']).toContain("object-src 'none'");

  await app.loadDefault();
  await app.id('model-file-input').setInputFiles(tinyPath);
  await expect(app.id('model-status')).toContainText(`ready: ${TINY_MODEL}`, { timeout: LONG });
  await app.id('model-url-input').fill(STAND_IN);
  await app.id('model-url-load').click();
  await expect(app.id('model-status')).toContainText('ready: stand-in.gguf', { timeout: LONG });

  await app.setMaxTokens(4);
  await app.waitReply(await app.send('A secret only for this device.'));
  await app.runCompare(3);
  // FP16, INT8, INT4 and the file's own mix (the loaded plan).
  await app.runQuality(16);

  // Another host: refused before any request, with the hosts that work and what to do instead.
  await app.id('model-url-input').fill('https://example.com/models/model.gguf');
  await app.id('model-url-load').click();
  await expect(app.id('error-message')).toContainText('example.com is not a host this page may download from', { timeout: LONG });
  await expect(app.id('error-message')).toContainText('huggingface.co');
  await expect(app.id('error-message')).toHaveAttribute('data-kind', 'HostBlocked');
  await expect(app.id('error-message')).toContainText('The page may not download from this site');
  await expect(app.id('error-message')).toContainText('Open a .gguf file');
  await app.screenshot(testInfo, 'blocked-host');
  await expect(app.id('model-status')).toContainText('ready: stand-in.gguf');
  // A gated model: Hugging Face answers 403 to a browser that is not signed in.
  await app.id('model-url-input').fill(GATED);
  await app.id('model-url-load').click();
  await expect(app.id('error-message')).toHaveAttribute('data-kind', 'HttpStatus', { timeout: LONG });
  await expect(app.id('error-message')).toContainText('answered HTTP 403');
  await expect(app.id('error-message')).toContainText('gated model');
  await expect(app.id('model-status')).toContainText('ready: stand-in.gguf');

  const origin = new URL(page.url()).origin;
  const elsewhere = requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('data:') && !u.startsWith('blob:'));
  console.log(`${requests.length} requests; to other origins: ${JSON.stringify(elsewhere)}`);
  expect(elsewhere).toEqual([STAND_IN, GATED]);
  expect(requests.length).toBeGreaterThan(5);
  expect(await page.evaluate(() => window.__cspViolations)).toEqual([]);
  expect(app.errors).toEqual([]);
});
