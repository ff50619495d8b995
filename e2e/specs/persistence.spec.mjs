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

  // The conversation goes on with a model, then a second chat.
  await app.loadTiny();
  await app.setMaxTokens(3);
  await app.waitReply(await app.send('Thanks!'));
  await expect(app.id('saved-chat').first()).toContainText('6 messages');
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
