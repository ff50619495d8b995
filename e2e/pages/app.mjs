// Page object for the lowbit page: tests talk to the page through these, by data-testid.
import { expect } from '@playwright/test';

export const DEFAULT_MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';

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
    await expect(this.id('kernel-selftest-status')).toHaveText(/^\d+\/\d+ passed$|^error/, { timeout: 8 * 60_000 });
    return this.id('selftest-row');
  }

  async runBench() {
    await this.openDiagnostics();
    await this.id('kernel-bench').click();
    await expect(this.id('kernel-bench-status')).toHaveText(/^timer: |^error/, { timeout: 8 * 60_000 });
    return this.id('bench-row');
  }

  async loadDefault() {
    await this.id('model-load-default').click();
    await this.waitReady();
  }

  async waitReady() {
    await expect(this.id('model-status')).toContainText('ready', { timeout: 5 * 60_000 });
  }

  /// Short replies keep the suite fast on a software GPU.
  async setMaxTokens(n) {
    await this.page.locator('details.sampling > summary').click();
    await this.id('max-tokens').fill(String(n));
    await this.id('max-tokens').dispatchEvent('change');
    await this.page.locator('details.sampling > summary').click();
  }

  async setPrecision(p) {
    await this.id(`precision-${p}`).click();
    await expect(this.id(`precision-${p}`)).toHaveAttribute('aria-pressed', 'true', { timeout: 5 * 60_000 });
    await this.waitReady();
  }

  async send(text) {
    await this.id('chat-input').fill(text);
    await this.id('send').click();
    return this.id('assistant-message').last();
  }

  /// Waits for the reply to finish; returns every text the reply showed on the way.
  async waitReply(msg, timeout = 8 * 60_000) {
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

  async screenshot(testInfo, name) {
    await this.page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
  }
}
