import {
  expect, logIn, PASSWORD, registeredMember, test,
} from './fixtures';

// serve.sh allows 50 failed logins per account per 15 minutes (loose, for a suite
// driving many accounts from one address).
const LIMIT = 50;

test('the owner logs in from their own browser while the account is under attack', async ({ page, browser, playwright, baseURL }) => {
  // The owner has used this browser before: it carries a device cookie.
  const name = await registeredMember(page, 'owner');
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/$/);

  // Someone else guesses, from a client the account has never seen.
  const attacker = await playwright.request.newContext({ baseURL });
  for (let i = 0; i < LIMIT; i++) {
    const form = await (await attacker.get('/')).text();
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(form)?.[1] ?? '';
    const resp = await attacker.post('/login', {
      form: { username: name, password: `guess number ${i}`, csrf },
      maxRedirects: 0,
    });
    expect(resp.status()).toBe(401);
  }
  await attacker.dispose();

  // Now an unknown browser is refused even with the right password …
  const stranger = await browser.newContext();
  const strangerPage = await stranger.newPage();
  await strangerPage.goto('/');
  await logIn(strangerPage, name, PASSWORD);
  await expect(strangerPage.getByRole('alert')).toHaveText(/Too many attempts/);
  await expect(strangerPage).not.toHaveURL(/\/cabinet$/);
  await stranger.close();

  // … but the owner's browser gets in.
  await logIn(page, name, PASSWORD);
  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
});
