import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, expectAccessible, logIn, stepNow, test, totp, turnOnTwoStep } from './fixtures';
import { accountId, claim, logOutOfWicket, member, wicket } from './oidc';

// An app that logs its users in through Wicket's OpenID Connect provider
// (serve-oidc.sh): Apache with mod_auth_openidc at 127.0.0.1 (the page's baseURL), a
// real relying party no one here wrote, and Wicket at localhost. Runs in js and no-js.

async function allow(page: Page, shot?: string) {
  await expect(page.getByRole('heading', { name: 'Allow Team pages?' })).toBeVisible();
  await expect(page.getByText('your username')).toBeVisible();
  await expect(page.getByText('the groups you are in')).toBeVisible();
  if (shot) {
    await expectAccessible(page);
    await page.screenshot({ path: join(__dirname, '..', 'screenshots', `${shot}-desktop.png`), fullPage: true });
  }
  await page.getByRole('button', { name: 'Allow' }).click();
}

test('a member logs in to an app behind Apache through Wicket, and logs out of both', async ({ page }, testInfo) => {
  const name = await member(page, 'oidc', 'staff');
  await logOutOfWicket(page);

  await page.goto('/protected/index.shtml');
  await expect(page).toHaveURL(new RegExp(`^${wicket}/\\?next=/oidc/continue`));
  await logIn(page, name);
  await allow(page, testInfo.project.name === 'oidc-js' ? 'oidc-consent' : undefined);
  await expect(page).toHaveURL(/\/protected\/index\.shtml$/);
  await expect(page.getByRole('heading', { name: 'Team pages' })).toBeVisible();
  await expect(claim(page, 'sub')).toHaveText(accountId(name));
  await expect(page.locator('[data-user]')).toHaveText(accountId(name));
  await expect(claim(page, 'preferred_username')).toHaveText(name);
  await expect(claim(page, 'groups')).toHaveText('staff');
  await expect(claim(page, 'amr')).toHaveText('pwd');

  // The account page lists the app; the consent is remembered.
  await page.goto(`${wicket}/account`);
  await expect(page.locator('#apps')).toContainText('Team pages');

  // The app's logout goes through Wicket's, which asks, then returns to the app.
  await page.goto('/protected/index.shtml');
  await page.getByRole('link', { name: 'Log out' }).click();
  await expect(page.getByRole('heading', { name: 'Log out of Wicket?' })).toBeVisible();
  await expect(page.getByText('Team pages asks to log you out.')).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/loggedout\.html$/);
  await expect(page.getByRole('heading', { name: 'You are logged out of the team pages' })).toBeVisible();
  await page.goto(`${wicket}/cabinet`);
  await expect(page).toHaveURL(`${wicket}/?next=/cabinet`);
});

test('with two-step login on, the app gets the member only after the code', async ({ page }) => {
  const name = await member(page, 'oidc2', 'staff');
  const key = await turnOnTwoStep(page, wicket);
  await logOutOfWicket(page);

  await page.goto('/protected/index.shtml');
  await logIn(page, name);
  await expect(page.getByRole('heading', { name: 'Two-step login' })).toBeVisible();
  await page.getByLabel('Code').fill(totp(key, stepNow() + 1));
  await page.getByRole('button', { name: 'Log in' }).click();
  await allow(page);
  await expect(page).toHaveURL(/\/protected\/index\.shtml$/);
  await expect(claim(page, 'sub')).toHaveText(accountId(name));
  await expect(claim(page, 'amr')).toHaveText('pwd,otp,mfa');
  await expect(claim(page, 'acr')).toHaveText('https://refeds.org/profile/mfa');
});

test('removing an app on the account page makes it ask again', async ({ page }) => {
  const name = await member(page, 'oidc3');
  await page.goto('/protected/index.shtml');
  await allow(page);
  await expect(claim(page, 'preferred_username')).toHaveText(name);
  await expect(claim(page, 'groups')).toHaveText('');

  await page.goto(`${wicket}/account`);
  const apps = page.locator('#apps');
  await apps.getByRole('button', { name: 'Remove access of Team pages' }).click();
  await expect(page.locator('#apps').getByRole('status')).toHaveText("The app's access was removed: it must ask again.");
  await expect(page.locator('#apps')).toContainText('No app logs you in');
});
