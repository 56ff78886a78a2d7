import * as path from 'node:path';
import type { Page, TestInfo } from '@playwright/test';
import {
  expect, expectAccessible, htmxSettled, linkIn, logIn, mailTo, PASSWORD, test, uniqueName,
} from './fixtures';

// Runs in both projects: with htmx (js) and as plain form posts (no-js). axe needs
// JavaScript, so it (and the screenshot) runs in the js project.
async function looksRight(page: Page, testInfo: TestInfo, name: string) {
  if (testInfo.project.name !== 'js') return;
  await expectAccessible(page);
  await page.screenshot({ path: path.join(__dirname, '..', 'screenshots', `${name}-desktop.png`), fullPage: true, caret: 'initial' });
}

test('an address is confirmed, a forgotten password reset by mail, the old one refused', async ({ page }, testInfo) => {
  const name = uniqueName('reset');
  const address = `${name}@example.com`;

  // Register with an address; confirm it from the mail.
  await page.goto('/register/');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByLabel('Email address (optional)').fill(address);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  const confirm = await mailTo(address, 'Confirm your email address');
  await page.goto(linkIn(confirm, '/verify-email/'));
  await expect(page.getByRole('heading', { name: 'Address confirmed' })).toBeVisible();
  await page.goto('/account');
  await expect(page.locator('#email-address')).toContainText(`${address} is confirmed`);
  await looksRight(page, testInfo, 'account-email');
  await page.goto('/logout');
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/$/);

  // Forgot: from the login form.
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await expect(page).toHaveURL(/\/forgot$/);
  await looksRight(page, testInfo, 'forgot');
  await page.getByLabel('Username or email address').fill(address.toUpperCase());
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await expect(page.getByRole('heading', { name: 'Check your mail' })).toBeVisible();

  // The link: the token leaves the address bar at once.
  const reset = linkIn(await mailTo(address, 'Reset your Wicket password'), '/reset/');
  await page.goto(reset);
  await expect(page).toHaveURL(/\/reset$/);
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
  await looksRight(page, testInfo, 'reset');
  const fresh = 'a new correct horse 2026';
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('New password again').fill('something else entirely');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByText('The passwords do not match.')).toBeVisible();
  await htmxSettled(page);
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('New password again').fill(fresh);
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();

  // The link worked once.
  await page.goto(reset);
  await expect(page.getByRole('heading', { name: 'This link cannot be used' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Ask for a new link' })).toBeVisible();

  // The old password is refused, the new one works.
  await page.goto('/logout');
  await page.getByRole('button', { name: 'Log out' }).click();
  await logIn(page, name, PASSWORD);
  await expect(page.getByRole('alert')).toContainText('Invalid username or password.');
  await logIn(page, name, fresh);
  await expect(page).toHaveURL(/\/cabinet$/);
});
