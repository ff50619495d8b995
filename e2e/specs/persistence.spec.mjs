// Conversations outlive the page: saved in IndexedDB as they happen (each reply with the
// precision and KV format that wrote it), back after a reload, listed with the other saved chats,
// deleted, exported as JSON and imported again (a second import says what it skipped). The
// browser is asked to keep the storage, and the page shows how much it uses. On the tiny model.
import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { AppPage } from '../pages/app.mjs';

async function transcript(app) {
  return app.page.locator('[data-testid=user-message], [data-testid=assistant-message]').evaluateAll((ms) => ms.map((m) => ({
    who: m.dataset.testid,
    precision: m.dataset.precision,
    text: m.querySelector('[data-testid=message-text]').textContent,
  })));
}

test('a reload brings the conversation back; chats are listed, deleted, exported and imported', async ({ page, browser }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await app.loadTiny();
  await app.setMaxTokens(4);
  await app.waitReply(await app.send('What is the capital of France?'));
  // Once, under the first reply: a model this small is weak at facts at every precision.
  await expect(app.id('small-model-note')).toBeVisible();
  await expect(app.id('small-model-note')).toContainText('FP16 included');
  await app.setPrecision('int8');
  await app.waitReply(await app.send('And of Spain?'));
  const before = await transcript(app);
  expect(before.map((m) => m.who)).toEqual(['user-message', 'assistant-message', 'user-message', 'assistant-message']);
  expect(before.map((m) => m.precision)).toEqual(['', 'int4-int4-int8', '', 'int8']);

  // A reload: every message is back before any model is loaded, each reply with its precision.
  await page.reload();
  await app.open();
  await expect(app.id('assistant-message')).toHaveCount(2);
  expect(await transcript(app)).toEqual(before);
  await expect(app.id('model-status')).toContainText('no model loaded');
  await page.locator('details.chats > summary').click();
  await expect(app.id('saved-chat')).toHaveCount(1);
  await expect(app.id('saved-chat')).toContainText('What is the capital of France?');
  await expect(app.id('saved-chat')).toContainText('4 messages');
  await expect(app.id('storage-estimate')).toContainText('this site uses');
  await app.screenshot(testInfo, 'restored');

  // The conversation goes on with a model (at the precision chosen before the reload), whose
  // cache starts empty and says so; then a second chat.
  await app.loadTiny();
  await expect(app.id('precision-int8')).toHaveAttribute('aria-pressed', 'true');
  await expect(app.id('context-unread')).toContainText('the next message reads the conversation above again');
  await app.screenshot(testInfo, 'restored-loaded');
  await app.setMaxTokens(3);
  await app.waitReply(await app.send('Thanks!'));
  await expect(app.id('saved-chat').first()).toContainText('6 messages');
  await expect(app.id('context-unread')).toHaveCount(0);
  // The small-model note, read, does not come back.
  await app.id('small-model-note-dismiss').click();
  await expect(app.id('small-model-note')).toHaveCount(0);
  await app.id('new-chat').click();
  await app.waitReply(await app.send('A second conversation.'));
  await expect(app.id('saved-chat')).toHaveCount(2);
  await expect(app.id('saved-chat').first()).toContainText('A second conversation.');
  // The first chat opens again as it was.
  await app.id('saved-chat').filter({ hasText: 'capital of France' }).getByTestId('open-chat').click();
  await expect(app.id('user-message')).toHaveCount(3);
  await expect(app.id('user-message').last()).toContainText('Thanks!');

  // Export: one JSON file with both chats.
  const [download] = await Promise.all([page.waitForEvent('download'), app.id('export-chats').click()]);
  expect(download.suggestedFilename()).toMatch(/^lowbit-chats-\d{4}-\d{2}-\d{2}\.json$/);
  const path = testInfo.outputPath('chats.json');
  await download.saveAs(path);
  const file = JSON.parse(readFileSync(path, 'utf8'));
  expect(file.format).toBe('lowbit-chats');
  expect(file.schema).toBe(1);
  expect(file.chats.map((c) => c.messages.length).sort()).toEqual([2, 6]);
  expect(file.chats.find((c) => c.messages.length === 6).messages[3].plan).toEqual({ attention: 'int8', ffn: 'int8', embeddings: 'int8' });
  await expect(app.id('history-note')).toContainText('Exported 2 chats');
  // Importing it here again adds nothing and says so.
  await app.id('import-chats').setInputFiles(path);
  await expect(app.id('history-note')).toHaveText('Imported 0 chats; skipped 2 chats already here.');
  await expect(app.id('saved-chat')).toHaveCount(2);
  // Delete one; the other stays, after a reload too.
  await app.id('saved-chat').filter({ hasText: 'A second conversation.' }).getByTestId('delete-chat').click();
  await expect(app.id('saved-chat')).toHaveCount(1);
  await page.reload();
  await app.open();
  await page.locator('details.chats > summary').click();
  await expect(app.id('saved-chat')).toHaveCount(1);
  await expect(app.id('user-message')).toHaveCount(3);

  // Another browser profile (nothing saved) imports the file: both chats arrive.
  const other = await browser.newContext();
  const page2 = await other.newPage();
  const app2 = new AppPage(page2);
  await app2.open();
  await page2.locator('details.chats > summary').click();
  await expect(app2.id('saved-chat')).toHaveCount(0);
  await app2.id('import-chats').setInputFiles(path);
  await expect(app2.id('history-note')).toHaveText('Imported 2 chats.');
  await expect(app2.id('saved-chat')).toHaveCount(2);
  await app2.id('saved-chat').filter({ hasText: 'capital of France' }).getByTestId('open-chat').click();
  await expect(app2.id('assistant-message')).toHaveCount(3);
  await other.close();
  expect(app.errors).toEqual([]);
});

/// Two workers spinning on this page's process, as a busy machine would: IndexedDB's commits then
/// come late, which is when a page that shows a save before it is committed loses it.
async function busyCpu(page) {
  await page.evaluate(() => {
    const src = URL.createObjectURL(new Blob(['for (;;) {}'], { type: 'text/javascript' }));
    window.lowbitBusy = [new Worker(src), new Worker(src)];
  });
}

test('what the page says is saved or deleted survives a reload at once, on a busy machine', async ({ page }, testInfo) => {
  const app = new AppPage(page);
  await page.setViewportSize({ width: 1300, height: 1000 });
  await app.open();
  await busyCpu(page);
  await app.loadTiny();
  await app.setMaxTokens(2);
  await page.locator('details.chats > summary').click();
  // A question and its reply: reloaded the moment the list says both are saved.
  await app.waitReply(await app.send('Saved before shown?'));
  await expect(app.id('saved-chat')).toContainText('2 messages');
  await page.reload();
  await app.open();
  await busyCpu(page);
  await expect(app.id('user-message')).toHaveCount(1);
  await expect(app.id('assistant-message')).toHaveCount(1);
  await page.locator('details.chats > summary').click();
  await expect(app.id('saved-chat')).toHaveCount(1);
  await expect(app.id('saved-chat')).toContainText('2 messages');
  // A second chat, then the first deleted: reloaded the moment the list says so.
  await app.loadTiny();
  await app.id('new-chat').click();
  await app.waitReply(await app.send('A second one.'));
  await expect(app.id('saved-chat')).toHaveCount(2);
  await page.reload();
  await app.open();
  await busyCpu(page);
  await page.locator('details.chats > summary').click();
  await expect(app.id('saved-chat')).toHaveCount(2);
  await app.id('saved-chat').filter({ hasText: 'Saved before shown?' }).getByTestId('delete-chat').click();
  await expect(app.id('saved-chat')).toHaveCount(1);
  await page.reload();
  await app.open();
  await page.locator('details.chats > summary').click();
  await expect(app.id('saved-chat')).toHaveCount(1);
  await expect(app.id('saved-chat')).toContainText('A second one.');
  await app.screenshot(testInfo, 'durable');
  expect(app.errors).toEqual([]);
});
