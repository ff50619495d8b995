// The page for everyone: an axe-core audit of every panel (chat, precision, model card, the lab's
// compare view, quality, speed and inspector with their charts, diagnostics, the glossary) at
// desktop and phone width with zero serious or critical violations; a model loaded and a chat
// held with the keyboard alone; on a phone-width screen the chat first and the explanations
// folded. On the tiny test model.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { AppPage, LONG, TINY_MODEL } from '../pages/app.mjs';

const AXE = readFileSync(new URL('../node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

/// Serious and critical violations on the page as it is now (DevTools evaluation is not subject
/// to the page's Content-Security-Policy, so axe needs no exception in it).
async function audit(page, label) {
  await page.evaluate(AXE);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const all = r.violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')})`);
  console.log(`axe ${label}: ${all.length ? all.join('\n  ') : 'no violations'}`);
  return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
}

async function focused(page) {
  return page.evaluate(() => document.activeElement?.dataset.testid || document.activeElement?.tagName);
}

test('a model is loaded and a chat held with the keyboard alone', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1400, height: 900 });
  await app.open();
  // The first stop skips to the chat.
  await page.keyboard.press('Tab');
  await expect(app.id('skip-to-chat')).toBeFocused();
  await app.screenshot(testInfo, 'skip-link');
  await page.keyboard.press('Enter');
  await expect(app.id('chat-input')).toBeFocused();
  // From the top, the ways to load a model, in reading order.
  await page.locator('h1').click();
  const order = [];
  for (let i = 0; i < 4; i++) {
    await page.keyboard.press('Tab');
    order.push(await focused(page));
  }
  expect(order).toEqual(['model-load-default', 'model-file-input', 'model-folder-input', 'model-url-input']);
  await page.keyboard.type(`models/${TINY_MODEL}`);
  await page.keyboard.press('Enter');
  await expect(app.id('model-status')).toContainText(`ready: ${TINY_MODEL}`, { timeout: LONG });
  // Ready: the focus is in the message box. Max tokens is one step back.
  await expect(app.id('chat-input')).toBeFocused();
  await page.keyboard.press('Shift+Tab');
  await expect(app.id('max-tokens')).toBeFocused();
  await page.keyboard.press('Control+A');
  await page.keyboard.type('4');
  await page.keyboard.press('Tab');
  await expect(app.id('chat-input')).toBeFocused();
  await expect(app.id('max-tokens')).toHaveValue('4');
  await page.keyboard.type('Hello!');
  await page.keyboard.press('Enter');
  const reply = app.id('assistant-message').last();
  await app.waitReply(reply);
  await expect(reply.getByTestId('message-stats')).toContainText(/^[1-4] tokens? /);
  // The focus comes back to the message box for the next question.
  await expect(app.id('chat-input')).toBeFocused();
  // The reply's own actions come right after it in the tab order, before the message box; under
  // a small model's first reply, the note's "Got it" sits between them.
  await page.keyboard.press('Shift+Tab');
  await expect(app.id('max-tokens')).toBeFocused();
  await page.keyboard.press('Shift+Tab');
  expect(await focused(page)).toBe('small-model-note-dismiss');
  await page.keyboard.press('Shift+Tab');
  expect(['regenerate-message', 'copy-message']).toContain(await focused(page));
  // A word's link goes to its definition.
  await page.locator('[data-testid=quality-panel] details.explain a[href="#g-perplexity"]').click();
  await expect(page.locator('#g-perplexity')).toBeInViewport();
  expect(app.errors).toEqual([]);
});

test('every panel passes an accessibility audit at 1400 and 420 px', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1400, height: 900 });
  await app.open();
  expect(await audit(page, 'empty page')).toEqual([]);
  await app.loadTiny();
  await app.setMaxTokens(4);
  await app.waitReply(await app.send('Hello there'));
  // Every folded part open, every lab tool run once, so each panel and chart is in the audit.
  await page.locator('details').evaluateAll((ds) => ds.forEach((d) => { d.open = true; }));
  await app.runCompare(4, 'Hi');
  await app.runQuality(16);
  await app.id('speed-profile').click();
  await expect(app.id('kernel-times')).toBeVisible({ timeout: LONG });
  await app.id('inspector-tensor').selectOption('blk.0.ffn_down.weight');
  await app.id('inspector-run').click();
  await expect(app.id('inspector-error').locator('svg')).toHaveCount(5, { timeout: LONG });
  await app.id('inspector-layers').click();
  await expect(app.id('inspector-heatmap').locator('svg')).toHaveCount(1, { timeout: LONG });
  // Charts are images with names, and legends sit outside the plot.
  await expect(app.id('compare-kl-chart').locator('svg[role=img]')).toHaveAttribute('aria-label', /KL vs FP16/);
  await expect(app.id('compare-kl-chart').locator('.legend li')).toHaveCount(3);
  expect(await audit(page, '1400 px, every panel')).toEqual([]);
  await app.screenshot(testInfo, 'every-panel-1400');
  await page.setViewportSize({ width: 420, height: 900 });
  expect(await audit(page, '420 px, every panel')).toEqual([]);
  await app.screenshot(testInfo, 'every-panel-420');
  // Nothing is wider than the screen.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
  expect(app.errors).toEqual([]);
});

test('on a phone-width screen the chat comes first and explanations are folded', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 420, height: 860 });
  await app.open();
  // Before a model: loading one is the first thing on the screen.
  const panel = await app.id('model-panel').boundingBox();
  expect(panel.y).toBeLessThan(200);
  await app.loadTiny();
  const top = (t) => app.id(t).evaluate((e) => e.getBoundingClientRect().top + window.scrollY);
  const [chat, model] = [await top('chat'), await top('model-panel')];
  console.log(`420 px: chat at y=${chat}, model panel at y=${model} in the page`);
  expect(chat).toBeLessThan(model);
  expect(chat).toBeLessThan(200);
  await expect(app.id('chat-input')).toBeInViewport();
  // The whole chat card is in view, not its message box at the screen's top edge.
  const card = await app.id('chat').boundingBox();
  expect(card.y).toBeGreaterThanOrEqual(0);
  expect(card.y + card.height).toBeLessThanOrEqual(860);
  // Explanations start folded here (open on wide screens), one tap away.
  const explains = page.locator('details.explain');
  expect(await explains.count()).toBeGreaterThan(5);
  expect(await explains.evaluateAll((ds) => ds.filter((d) => d.open).length)).toBe(0);
  await app.screenshot(testInfo, 'phone-loaded');
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
  expect(app.errors).toEqual([]);
});
