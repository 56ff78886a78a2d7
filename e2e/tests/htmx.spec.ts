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

test('the history cache never holds the cabinet, even when htmx takes a snapshot', async ({ page }) => {
  const name = await registeredMember(page, 'cache');
  // htmx is a deferred script: the page may be shown before it has run.
  await page.waitForFunction(() => (window as any).htmx !== undefined);
  // Wicket itself never pushes a URL, so htmx never snapshots on its own. Make it:
  // a push from the cabinet is exactly when htmx would save the page it leaves.
  const pushed = page.evaluate(
    () => new Promise<string>((resolve) => {
      document.body.addEventListener('htmx:pushedIntoHistory', (e: any) => resolve(e.detail.path), { once: true });
    }),
  );
  await page.evaluate(() => {
    const link = document.createElement('a');
    link.textContent = 'elsewhere';
    link.setAttribute('hx-get', '/static/favicon.svg');
    link.setAttribute('hx-push-url', '/elsewhere');
    link.setAttribute('hx-target', 'this');
    document.body.append(link);
    (window as any).htmx.process(link);
    link.click();
  });
  expect(await pushed).toBe('/elsewhere');
  const cache = await page.evaluate(() => sessionStorage.getItem('htmx-history-cache'));
  expect(cache ?? '').not.toContain(name);
  expect(cache ?? '').not.toContain('Welcome');
});
