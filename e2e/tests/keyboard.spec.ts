import { expect, PASSWORD, test, uniqueName } from './fixtures';

test('register, log out and log in again with the keyboard alone', async ({ page }) => {
  const name = uniqueName('keys');
  await page.goto('/register/');
  // The username field has focus on arrival.
  await expect(page.getByLabel('Username')).toBeFocused();
  await page.keyboard.type(name);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/cabinet$/);

  // Tab to the Log out button and press Enter.
  const logout = page.getByRole('button', { name: 'Log out' });
  for (let i = 0; i < 10 && !(await logout.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  await expect(logout).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/$/);

  await expect(page.getByLabel('Username')).toBeFocused();
  await page.keyboard.type(name);
  await page.keyboard.press('Tab');
  await page.keyboard.type(PASSWORD);
  // Tick "Keep me logged in" with the space bar, then on to the button.
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Keep me logged in')).toBeFocused();
  await page.keyboard.press('Space');
  await expect(page.getByLabel('Keep me logged in')).toBeChecked();
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Log in' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/cabinet$/);
  const session = (await page.context().cookies()).find((c) => c.name === 'wicket_session');
  expect(session?.expires, 'a remembered session outlives the browser').toBeGreaterThan(Date.now() / 1000);
});
