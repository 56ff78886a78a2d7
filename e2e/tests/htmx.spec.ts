import { countLoads, expect, register, registeredMember, test, uniqueName } from './fixtures';

// htmx behaviour: only meaningful with JavaScript.
test.beforeEach(({}, testInfo) => {
  test.skip(testInfo.project.name !== 'js', 'htmx needs JavaScript');
});

test('a failed login swaps the form in place without a page load', async ({ page }) => {
  await page.goto('/');
  await page.evaluate(() => ((window as any).__marker = 'still here'));
  const counts = countLoads(page);
  await page.getByLabel('Username').fill(uniqueName('swap'));
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('alert')).toHaveText('Invalid username or password.');
  expect(counts).toEqual({ navigations: 0, loads: 0 });
  expect(await page.evaluate(() => (window as any).__marker)).toBe('still here');
  await expect(page.getByLabel('Username')).toBeFocused();
});

test('register errors swap in place and focus the first bad field', async ({ page }) => {
  await page.goto('/register/');
  await page.evaluate(() => ((window as any).__marker = 'still here'));
  const counts = countLoads(page);
  await page.getByLabel('Username').fill(uniqueName('focus'));
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByLabel('Password again').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByRole('alert')).toHaveText('Use at least 8 characters.');
  await expect(page.getByLabel('Password', { exact: true })).toBeFocused();
  expect(counts).toEqual({ navigations: 0, loads: 0 });
  expect(await page.evaluate(() => (window as any).__marker)).toBe('still here');
});

test('success is one full load of the cabinet', async ({ page }) => {
  const name = uniqueName('hxok');
  await page.goto('/register/');
  const counts = countLoads(page);
  await register(page, name);
  await expect(page).toHaveURL(/\/cabinet$/);
  // register() itself navigates to /register/ once; htmx then redirects once.
  expect(counts.navigations).toBe(2);
});

test('the history cache never holds the cabinet', async ({ page }) => {
  const name = await registeredMember(page, 'cache');
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/$/);
  const cache = await page.evaluate(() => sessionStorage.getItem('htmx-history-cache') ?? '');
  expect(cache).not.toContain(name);
});
