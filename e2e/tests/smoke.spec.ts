import { expect, test } from '@playwright/test';

/** A name no other test (or run) uses, so tests are independent of order. */
function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

const password = 'correct horse battery';

test('register, see the cabinet, log out and log back in', async ({ page }, testInfo) => {
  const name = uniqueName('smoke');

  await page.goto('/');
  await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
  await page.getByRole('link', { name: 'Create an account' }).click();
  await expect(page).toHaveURL(/\/register\/$/);

  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Password again').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();

  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
  const image = page.getByRole('img', { name: /cricket wicket/ });
  await expect(image).toBeVisible();
  expect(await image.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
  await page.screenshot({ path: testInfo.outputPath('cabinet.png'), fullPage: true });

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();

  await page.goto('/cabinet');
  await expect(page).toHaveURL(/\/\?next=\/cabinet$/);

  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
});

test('a wrong password shows the error inline', async ({ page }) => {
  await page.goto('/');
  await page.getByLabel('Username').fill(uniqueName('nobody'));
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Invalid username or password.');
  await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
});
