// Page object for the lowbit page: tests talk to the page through these, by data-testid.
import { expect } from '@playwright/test';

export class AppPage {
  constructor(page) {
    this.page = page;
    this.errors = [];
    page.on('pageerror', (e) => this.errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') this.errors.push(m.text()); });
  }
  id(name) { return this.page.getByTestId(name); }

  async open() {
    await this.page.goto('/');
    await expect(this.id('adapter-name')).toBeVisible({ timeout: 60_000 });
  }

  async runSelfTest() {
    await this.id('kernel-selftest').click();
    await expect(this.id('kernel-selftest-status')).toHaveText(/^\d+\/\d+ passed$|^error/, { timeout: 8 * 60_000 });
    return this.id('selftest-row');
  }

  async runBench() {
    await this.id('kernel-bench').click();
    await expect(this.id('kernel-bench-status')).toHaveText(/^timer: |^error/, { timeout: 8 * 60_000 });
    return this.id('bench-row');
  }

  async screenshot(testInfo, name) {
    await this.page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
  }
}
