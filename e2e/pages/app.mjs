// Page object for the lowbit page: tests talk to the page through these, by data-testid.
import { expect } from '@playwright/test';

export const DEFAULT_MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';
/// The test model scripts/test.sh writes beside it: the default model's tokenizer, chat template
/// and formats at 2 layers of dim 96 with random weights. Specs that test mechanics (precision
/// switches, the lab, the quality panel) run on it; the default model answers where its knowledge
/// is the point.
export const TINY_MODEL = 'lowbit-tiny.gguf';

/// Safety nets, not expectations: how long a state may take to arrive before the test gives up on
/// a hung page. Sized for a machine several times slower than CI's (2 cores, software GPU).
/// LOWBIT_LONG_MS shortens them when debugging a hang.
export const LONG = Number(process.env.LOWBIT_LONG_MS) || 20 * 60_000;

/// Hugging Face's answer to a file download (for `route.fulfill`, where a test plays Hugging Face:
/// the machine has no internet): the bytes, with the CORS header Hugging Face sends.
export function huggingFaceFile(body) {
  return {
    status: 200,
    body,
    headers: { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*', 'content-length': String(body.length) },
  };
}

export class AppPage {
  constructor(page) {
    this.page = page;
    this.errors = [];
    this.modelRequests = [];
    page.on('pageerror', (e) => this.errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') this.errors.push(m.text()); });
    // Dedicated-worker requests are reported on the page too.
    page.on('request', (r) => { if (r.url().endsWith('.gguf')) this.modelRequests.push(r.url()); });
  }
  id(name) { return this.page.getByTestId(name); }

  async open() {
    await this.page.goto('/');
    await expect(this.id('model-status')).not.toContainText('starting the engine', { timeout: 60_000 });
  }

  async openDiagnostics() {
    await this.page.locator('details.diagnostics > summary').click();
    await expect(this.id('adapter-name')).toBeVisible({ timeout: 60_000 });
  }

  async runSelfTest() {
    await this.openDiagnostics();
    await this.id('kernel-selftest').click();
    await expect(this.id('kernel-selftest-status')).toHaveText(/^\d+\/\d+ passed$|^error/, { timeout: LONG });
    return this.id('selftest-row');
  }

  async runBench() {
    await this.openDiagnostics();
    await this.id('kernel-bench').click();
    await expect(this.id('kernel-bench-status')).toHaveText(/^timer: |^error/, { timeout: LONG });
    return this.id('bench-row');
  }

  async loadDefault() {
    await this.id('model-load-default').click();
    await this.waitReady();
  }

  /// The test model, from the page's own server through the URL field (a user's download path).
  async loadTiny() {
    await this.id('model-url-input').fill(`models/${TINY_MODEL}`);
    await this.id('model-url-load').click();
    await expect(this.id('model-status')).toContainText(`ready: ${TINY_MODEL}`, { timeout: LONG });
  }

  async waitReady() {
    await expect(this.id('model-status')).toContainText('ready', { timeout: LONG });
  }

  /// Short replies keep the suite fast on a software GPU (the field sits beside the chat input).
  async setMaxTokens(n) {
    await this.id('max-tokens').fill(String(n));
    await this.id('max-tokens').dispatchEvent('change');
  }

  /// The benchmark's prompt and decode lengths (either left as it is when not given).
  async setBenchTokens(prompt, decode) {
    for (const [field, n] of [['bench-prompt-tokens', prompt], ['bench-decode-tokens', decode]]) {
      if (n === undefined) continue;
      await this.id(field).fill(String(n));
      await this.id(field).dispatchEvent('change');
    }
  }

  async setPrecision(p) {
    await this.id(`precision-${p}`).click();
    await expect(this.id(`precision-${p}`)).toHaveAttribute('aria-pressed', 'true', { timeout: LONG });
    await this.waitReady();
  }

  async send(text) {
    await this.id('chat-input').fill(text);
    await this.id('send').click();
    return this.id('assistant-message').last();
  }

  /// Waits for the reply to finish; returns every text the reply showed on the way.
  async waitReply(msg, timeout = LONG) {
    const seen = [];
    const t0 = Date.now();
    for (;;) {
      const text = await msg.getByTestId('message-text').textContent();
      if (seen[seen.length - 1] !== text) seen.push(text);
      if ((await msg.getAttribute('data-done')) === 'true') break;
      if (Date.now() - t0 > timeout) throw new Error(`reply not finished after ${timeout} ms: ${JSON.stringify(seen)}`);
      await this.page.waitForTimeout(100);
    }
    return seen;
  }

  /// A comparison of `tokens` positions at FP16, INT8 and INT4 (the default lanes); `prompt`
  /// replaces the one in the field when given.
  /// A comparison of `tokens` tokens at the lanes ticked: by default FP16, INT8, INT4 and the
  /// file's own setting (the tiny model's Q4_1/Q8_0 mix).
  async runCompare(tokens, prompt, lanes = 4) {
    if (prompt !== undefined) await this.id('compare-prompt').fill(prompt);
    await this.id('compare-max-tokens').fill(String(tokens));
    await this.id('compare-max-tokens').dispatchEvent('change');
    await this.id('compare-run').click();
    await expect(this.id('compare-summary-row')).toHaveCount(lanes, { timeout: LONG });
  }

  /// A quality run on the first `tokens` tokens of the chosen text: FP16, INT8, INT4 and the
  /// loaded plan when it is a mix.
  async runQuality(tokens, rows = 4) {
    await this.id('quality-max-tokens').fill(String(tokens));
    await this.id('quality-max-tokens').dispatchEvent('change');
    await this.id('quality-run').click();
    await expect(this.id('quality-row')).toHaveCount(rows, { timeout: LONG });
  }

  async screenshot(testInfo, name) {
    await this.page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
  }
}
