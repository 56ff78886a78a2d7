import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, expectAccessible, logIn, PASSWORD, registeredMember, test } from './fixtures';
import type { Browser, Page } from '@playwright/test';

// Every scenario runs twice: with htmx (`js`) and as plain forms (`no-js`).

const NEW_PASSWORD = 'a brand new secret phrase';

/** A second browser (its own cookies), logged in as `name`, on the cabinet. */
async function secondBrowser(
  browser: Browser,
  name: string,
  javaScriptEnabled: boolean,
  baseURL: string,
  userAgent?: string,
): Promise<Page> {
  const context = await browser.newContext({ baseURL, javaScriptEnabled, userAgent });
  const other = await context.newPage();
  await other.goto('/');
  await logIn(other, name);
  await expect(other).toHaveURL(/\/cabinet$/);
  return other;
}

test('the cabinet leads to the account page, which lists this browser', async ({ page }) => {
  const name = await registeredMember(page, 'acct');
  await page.getByRole('link', { name: 'Your account' }).click();
  await expect(page).toHaveURL(/\/account$/);
  await expect(page.getByRole('heading', { name: 'Your account', exact: true })).toBeVisible();
  await expect(page.locator('#account')).toContainText(name);
  await expect(page.locator('#sessions')).toContainText('This browser');
});

test('a wrong current password is refused inline; the right one changes it', async ({ page }) => {
  const name = await registeredMember(page, 'pw');
  await page.goto('/account');
  const form = page.locator('#change-password');
  await form.getByLabel('Current password').fill('not my password');
  await form.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await form.getByLabel('New password again').fill(NEW_PASSWORD);
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(page.locator('#change-password').getByRole('alert')).toHaveText('That is not your current password.');
  await expect(page.locator('#change-password').getByLabel('Current password')).toHaveAttribute('aria-invalid', 'true');

  await page.locator('#change-password').getByLabel('Current password').fill(PASSWORD);
  await page.locator('#change-password').getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await page.locator('#change-password').getByLabel('New password again').fill(NEW_PASSWORD);
  await page.locator('#change-password').getByRole('button', { name: 'Change password' }).click();
  await expect(page.locator('#change-password').getByRole('status')).toContainText('Your password was changed.');
  await expect(page.locator('#sessions')).toContainText('This browser');

  // Still logged in; the new password is the one that works now.
  await page.goto('/cabinet');
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
});

test('ending another session from the list tells that browser why', async ({ page, browser, baseURL }, testInfo) => {
  const js = testInfo.project.name === 'js';
  const name = await registeredMember(page, 'end');
  const other = await secondBrowser(browser, name, js, baseURL!);
  await page.goto('/account');
  await page.getByRole('button', { name: 'End this session' }).click();
  await expect(page.locator('#sessions').getByRole('status')).toHaveText('The session was ended.');
  await expect(page.getByRole('button', { name: 'End this session' })).toHaveCount(0);

  await other.goto('/cabinet');
  await expect(other).toHaveURL(/\/\?next=\/cabinet$/);
  await expect(other.getByRole('status')).toHaveText(
    'You were logged out because the session was ended from another device.',
  );
  await other.context().close();
});

test('a password change logs every other browser out, with the reason', async ({ page, browser, baseURL }, testInfo) => {
  const name = await registeredMember(page, 'pwall');
  const other = await secondBrowser(browser, name, testInfo.project.name === 'js', baseURL!);
  await page.goto('/account');
  const form = page.locator('#change-password');
  await form.getByLabel('Current password').fill(PASSWORD);
  await form.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
  await form.getByLabel('New password again').fill(NEW_PASSWORD);
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(page.locator('#change-password').getByRole('status')).toContainText('Your password was changed.');

  await other.reload();
  await expect(other.getByRole('status')).toHaveText('You were logged out because your password was changed.');
  await other.context().close();
});

test('deleting the account asks for the password and says goodbye', async ({ page }) => {
  await registeredMember(page, 'bye');
  await page.goto('/account');
  const form = page.locator('#delete-account');
  await form.getByLabel('Your password').fill('not my password');
  await form.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.locator('#delete-account').getByRole('alert')).toHaveText('That is not your current password.');

  await page.locator('#delete-account').getByLabel('Your password').fill(PASSWORD);
  await page.locator('#delete-account').getByRole('button', { name: 'Delete my account' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('status')).toHaveText('You were logged out because the account was deleted.');
});

test('the password can be changed with the keyboard alone', async ({ page }) => {
  await registeredMember(page, 'keyacct');
  await page.goto('/account');
  await page.locator('#change-password').getByLabel('Current password').focus();
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Tab');
  await page.keyboard.type(NEW_PASSWORD);
  await page.keyboard.press('Tab');
  await page.keyboard.type(NEW_PASSWORD);
  await page.keyboard.press('Enter');
  await expect(page.locator('#change-password').getByRole('status')).toContainText('Your password was changed.');
});

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 '
  + '(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

test('recent activity lists a login from a second browser, whose "This wasn\'t me" ends every session', async ({ page, browser, baseURL }, testInfo) => {
  const name = await registeredMember(page, 'journal');
  const javaScriptEnabled = testInfo.project.use.javaScriptEnabled !== false;
  const other = await secondBrowser(browser, name, javaScriptEnabled, baseURL ?? '', IPHONE);
  await page.goto('/account');
  const activity = page.locator('#activity');
  await expect(activity.getByRole('heading', { name: 'Recent activity' })).toBeVisible();
  const login = activity.locator('li').first();
  await expect(login).toContainText('Logged in (password)');
  await expect(login).toContainText('Safari on iOS · 127.0.0.1');
  if (testInfo.project.name === 'js') {
    await expectAccessible(page);
    await activity.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(__dirname, '..', 'screenshots', 'activity-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto('/account/activity');
    await page.screenshot({ path: join(__dirname, '..', 'screenshots', 'activity-phone.png'), fullPage: true });
  }
  await page.goto('/account/activity');
  await expect(page.getByRole('heading', { name: "Your account's activity" })).toBeVisible();
  await expect(page.locator('#activity li')).toHaveCount(1);

  // Not this browser's login: "This wasn't me" ends every session, this one too.
  await page.locator('#activity li').first().getByRole('button', { name: "This wasn't me" }).click();
  await expect(page).toHaveURL(/\/$/);
  const why = 'You were logged out because a login to this account was reported as not its owner\'s.';
  await expect(page.getByText(why)).toBeVisible();
  await other.goto('/cabinet');
  await expect(other).toHaveURL(/\/\?next=\/cabinet$/);
  await expect(other.getByText(why)).toBeVisible();
  await other.context().close();

  // Written down, and a login from this browser offers no "This wasn't me".
  await logIn(page, name);
  await expect(page).toHaveURL(/\/cabinet$/);
  await page.goto('/account/activity');
  const reported = page.locator('#activity li').nth(1);
  await expect(reported).toContainText('"This wasn\'t me": every session ended');
  await expect(reported).toContainText('Chrome on Linux · 127.0.0.1');
  await expect(page.locator('#activity li').first().getByRole('button', { name: "This wasn't me" })).toHaveCount(0);
});

test('a member downloads their data with the password', async ({ page }) => {
  const name = await registeredMember(page, 'export');
  await page.goto('/account');
  await page.getByRole('link', { name: 'Download your data' }).click();
  await expect(page.getByRole('heading', { name: 'Your data' })).toBeVisible();
  await page.getByLabel('Your password').fill('not my password');
  await page.getByRole('button', { name: 'Download my data' }).click();
  await expect(page.getByText('That is not your current password.')).toBeVisible();
  await page.getByLabel('Your password').fill(PASSWORD);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download my data' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe(`account-${name}.json`);
  const path = await download.path();
  const data = JSON.parse(readFileSync(path, 'utf8'));
  expect(data.account.name).toBe(name);
  expect(JSON.stringify(data)).not.toContain('$scrypt$');
});
