import * as path from 'node:path';
import type { Page, TestInfo } from '@playwright/test';
import {
  base32Decode, expect, expectAccessible, linkIn, logIn, mailTo, PASSWORD, registeredMember, stepNow, test,
  totp, turnOnTwoStep, uniqueName,
} from './fixtures';

// Runs in js and no-js: the setup, a login with the app's code, one with a recovery
// code. The code is computed here from the key the page shows (RFC 6238, SHA-1).


async function shot(page: Page, testInfo: TestInfo, name: string) {
  if (testInfo.project.name !== 'js') return;
  await expectAccessible(page);
  await page.screenshot({ path: path.join(__dirname, '..', 'screenshots', `${name}-desktop.png`), fullPage: true, caret: 'initial' });
}

/** Logs out, then logs `name` in again (password only). */
async function logOutAndIn(page: Page, name: string) {
  await page.goto('/logout');
  await page.getByRole('button', { name: 'Log out' }).click();
  await logIn(page, name);
}

test('two-step login: set up from the QR page, log in with a code, then with a recovery code', async ({ page }, testInfo) => {
  const name = await registeredMember(page, 'totp');
  await page.goto('/account');
  const section = page.locator('#two-step-login');
  await section.getByRole('button', { name: 'Set up two-step login' }).click();
  await expect(section.getByRole('img', { name: 'QR code for your authenticator app' })).toBeVisible();
  await shot(page, testInfo, 'two-step-setup');
  const key = base32Decode(await section.locator('code.key').innerText());
  await section.getByLabel('Code from your app').fill(totp(key, stepNow()));
  await section.getByLabel('Your password').fill('correct horse battery');
  await section.getByRole('button', { name: 'Turn on two-step login' }).click();
  await expect(page.getByText('Two-step login is on.')).toBeVisible();
  const recovery = await page.locator('.codes code').allInnerTexts();
  expect(recovery).toHaveLength(10);
  if (testInfo.project.name === 'js') {
    // The other forms that now ask for a code redraw themselves, with no reload.
    await expect(page.locator('#delete-account').getByLabel(/^Code from your authenticator app/)).toBeVisible();
    await expect(page.locator('#two-step-login .codes code')).toHaveCount(10);
  }
  await shot(page, testInfo, 'two-step-recovery-codes');

  // A password alone opens nothing; the app's code does.
  await logOutAndIn(page, name);
  await expect(page.getByRole('heading', { name: 'Two-step login' })).toBeVisible();
  const field = page.getByLabel('Code');
  await expect(field).toHaveAttribute('autocomplete', 'one-time-code');
  await expect(field).toHaveAttribute('inputmode', 'numeric');
  await shot(page, testInfo, 'two-step-code');
  await field.fill('000000');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByText('That code is not right.')).toBeVisible();
  await page.getByLabel('Code').fill(totp(key, stepNow() + 1));
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);

  // A recovery code, once; the account page counts what is left.
  await logOutAndIn(page, name);
  await page.getByLabel('Code').fill(recovery[0]);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/account\?done=recovery$/);
  await expect(page.getByText('9 unused recovery codes left.')).toBeVisible();
});

test('a reset by mail on a two-step account asks the code before anything changes', async ({ page }, testInfo) => {
  const name = uniqueName('tsreset');
  const address = `${name}@example.com`;
  await page.goto('/register/');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByLabel('Email address (optional)').fill(address);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  await page.goto(linkIn(await mailTo(address, 'Confirm your email address'), '/verify-email/'));
  await expect(page.getByRole('heading', { name: 'Address confirmed' })).toBeVisible();
  const key = await turnOnTwoStep(page);
  await page.goto('/logout');
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('status')).toHaveText('You are logged out.');

  await page.goto('/forgot');
  await page.getByLabel('Username or email address').fill(name);
  await page.getByRole('button', { name: 'Send me a link' }).click();
  await expect(page.getByRole('heading', { name: 'Check your mail' })).toBeVisible();
  await page.goto(linkIn(await mailTo(address, 'Reset your Wicket password'), '/reset/'));
  await expect(page.getByText('Two-step login is on, so a code is needed as well.')).toBeVisible();
  const fresh = 'a new correct horse 2027';
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('New password again').fill(fresh);
  await page.getByLabel(/^Code from your authenticator app/).fill('000000');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByText('That code is not right.')).toBeVisible();
  await shot(page, testInfo, 'reset-two-step');
  // With the right code the password changes and this browser is logged in.
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('New password again').fill(fresh);
  await page.getByLabel(/^Code from your authenticator app/).fill(totp(key, stepNow() + 1));
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
});

test('a browser trusted at the second step skips the code until it is forgotten', async ({ page }, testInfo) => {
  const name = await registeredMember(page, 'trust');
  const key = await turnOnTwoStep(page);
  await logOutAndIn(page, name);
  const trust = page.getByLabel('Trust this browser for 30 days');
  await expect(trust).not.toBeChecked();
  await trust.check();
  await page.getByLabel('Code').fill(totp(key, stepNow() + 1));
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);

  // Next time the password alone logs this browser in.
  await logOutAndIn(page, name);
  await expect(page).toHaveURL(/\/cabinet$/);

  // The account page lists it; "Forget" ends it.
  await page.goto('/account');
  const trusted = page.locator('#trusted-browsers');
  await expect(trusted.getByRole('heading', { name: 'Trusted browsers' })).toBeVisible();
  if (testInfo.project.name === 'js') {
    await expectAccessible(page);
    await trusted.screenshot({ path: path.join(__dirname, '..', 'screenshots', 'trusted-browsers-desktop.png') });
  }
  await trusted.getByRole('button', { name: 'Forget Chrome on Linux' }).click();
  await expect(page.locator('#trusted-browsers')).toHaveCount(0);
  await logOutAndIn(page, name);
  await expect(page.getByLabel('Code')).toBeVisible();
});
