// The page's layout as a first visitor sees it: on a phone every card spans the column before a
// model is loaded; on a desktop the chat column fills the height beside the model's column; words
// that must not break (a licence) do not, and the benchmark's labels match the other controls'.
import { test, expect } from '@playwright/test';
import { AppPage } from '../pages/app.mjs';

/// Widths of the cards in the model/chat layout.
async function cardWidths(page) {
  return page.locator('.layout section, .layout details.chats').evaluateAll((els) => els
    .filter((e) => e.getBoundingClientRect().height > 0)
    .map((e) => ({ cls: e.className, w: Math.round(e.getBoundingClientRect().width) })));
}

test('first visit on a phone: every card spans the column, the chat placeholder shows whole', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 420, height: 900 });
  await app.open();
  const widths = await cardWidths(page);
  console.log(`card widths at 420 px: ${JSON.stringify(widths)}`);
  const main = await page.locator('main').evaluate((m) => m.clientWidth - parseFloat(getComputedStyle(m).paddingLeft) * 2);
  for (const c of widths) expect(Math.abs(c.w - main), c.cls).toBeLessThanOrEqual(1);
  // The message box is as wide as its card allows, so its placeholder is not cut.
  const input = app.id('chat-input');
  const fits = await input.evaluate((el) => {
    const probe = document.createElement('span');
    probe.style.font = getComputedStyle(el).font;
    probe.style.whiteSpace = 'nowrap';
    probe.textContent = el.placeholder;
    document.body.appendChild(probe);
    const need = probe.getBoundingClientRect().width;
    probe.remove();
    const s = getComputedStyle(el);
    return { need, have: el.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight), lines: el.rows || 1 };
  });
  console.log(`chat placeholder: ${JSON.stringify(fits)}`);
  expect(fits.need).toBeLessThanOrEqual(fits.have * fits.lines);
  await app.screenshot(testInfo, 'phone-first-visit');
  expect(app.errors).toEqual([]);
});

test('desktop: no empty column, no word broken, one font for the controls', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.screenshot(testInfo, 'desktop');
  // The model's column is the taller; scrolled to its end, the chat is still in view beside it
  // rather than an empty column.
  await page.locator('.layout > aside > section:last-child').evaluate((e) => e.scrollIntoView({ block: 'end' }));
  const seen = await page.evaluate(() => {
    const r = (s) => document.querySelector(s).getBoundingClientRect();
    return { input: r('[data-testid=chat-input]'), aside: r('.layout > aside'), h: innerHeight };
  });
  console.log(`scrolled to the model column's end: ${JSON.stringify(seen)}`);
  expect(seen.aside.bottom).toBeGreaterThan(seen.h - 40);
  expect(seen.input.top).toBeGreaterThanOrEqual(0);
  expect(seen.input.bottom).toBeLessThanOrEqual(seen.h);
  await page.screenshot({ path: testInfo.outputPath('desktop-scrolled.png') });
  // The picker's licences stay on one line each.
  await page.locator('.model-picker > summary').click();
  const licences = await app.id('pick-license').evaluateAll((ls) => ls.map((l) => ({ text: l.textContent, lines: l.getClientRects().length })));
  console.log(`licences: ${JSON.stringify(licences)}`);
  expect(licences.length).toBeGreaterThan(0);
  for (const l of licences) expect(l.lines, l.text).toBe(1);
  // The benchmark's labels in the font of the other inline controls.
  const sizes = await page.locator('.speed-panel label, .quality-form label.inline').evaluateAll((ls) => [...new Set(ls.map((l) => getComputedStyle(l).fontSize))]);
  expect(sizes).toEqual(['13px']);
  expect(app.errors).toEqual([]);
});
