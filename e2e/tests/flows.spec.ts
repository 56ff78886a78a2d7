import {
  expect, logIn, PASSWORD, register, registeredMember, test, uniqueName,
} from './fixtures';

// Every scenario here runs twice: in the `js` project (htmx) and in `no-js`.

test.describe('register', () => {
  test('a new user lands on the cabinet', async ({ page }) => {
    const name = await registeredMember(page, 'newbie');
    await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
  });

  test('a taken name is refused inline, keeping what was typed', async ({ page, createUser }) => {
    const name = uniqueName('taken');
    await createUser(name);

    await register(page, name.toUpperCase());
    await expect(page.getByRole('alert')).toHaveText(/That name is taken/);
    await expect(page.getByLabel('Username')).toHaveValue(name.toUpperCase());
    await expect(page.getByLabel('Username')).toHaveAttribute('aria-invalid', 'true');
    await expect(page).toHaveURL(/\/register\/$/);
  });

  test('passwords that differ are refused inline', async ({ page }) => {
    await register(page, uniqueName('differ'), PASSWORD, 'something else entirely');
    await expect(page.getByRole('alert')).toHaveText('The passwords do not match.');
    await expect(page.getByLabel('Password again')).toHaveAttribute('aria-invalid', 'true');
  });

  test('a too-short password is refused inline', async ({ page }) => {
    await register(page, uniqueName('short'), 'short', 'short');
    await expect(page.getByRole('alert')).toHaveText('Use at least 8 characters.');
    await expect(page.getByLabel('Password', { exact: true })).toHaveAttribute('aria-invalid', 'true');
  });
});

test.describe('log in', () => {
  test('the right password opens the cabinet', async ({ page, createUser }) => {
    const name = uniqueName('login');
    await createUser(name);

    await page.goto('/');
    await logIn(page, name);
    await expect(page).toHaveURL(/\/cabinet$/);
    await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
  });

  test('a wrong password and an unknown user get the same message', async ({ page, createUser }) => {
    const name = uniqueName('wrong');
    await createUser(name);

    await page.goto('/');
    await logIn(page, name, 'not the password');
    const alert = page.getByRole('alert');
    await expect(alert).toHaveText('Invalid username or password.');
    const wrongPassword = await page.locator('#login').innerHTML();

    await page.goto('/');
    await logIn(page, name + 'x', 'not the password');
    await expect(alert).toHaveText('Invalid username or password.');
    const unknownUser = await page.locator('#login').innerHTML();
    const scrub = (html: string) => html.replace(/value="[^"]*"/g, 'value=""');
    expect(scrub(unknownUser)).toEqual(scrub(wrongPassword));
    await expect(page.getByLabel('Password')).toHaveValue('');
  });
});

test.describe('cabinet', () => {
  test('greets the member by name with an image and the session facts', async ({ page }) => {
    const name = await registeredMember(page, 'cabinet');
    await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
    const image = page.getByRole('img', { name: /cricket wicket/ });
    await expect(image).toBeVisible();
    // Visible is not loaded: under load the image may still be arriving, so wait for it to decode.
    await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    for (const fact of ['Logged in', 'Last active', 'Session ends']) {
      await expect(page.getByText(fact, { exact: true })).toBeVisible();
    }
    await expect(page.locator('dl.facts time')).toHaveCount(3);
  });

  test('anonymous visitors land on the login form and return after login', async ({ page, createUser }) => {
    const name = uniqueName('next');
    await createUser(name);

    await page.goto('/cabinet');
    await expect(page).toHaveURL(/\/\?next=\/cabinet$/);
    await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
    await logIn(page, name);
    await expect(page).toHaveURL(/\/cabinet$/);
  });
});

test.describe('next', () => {
  // A `next` that a browser could resolve to another host never leaves the site:
  // Chromium itself reads the Location Wicket sends.
  for (const trick of ['/..//evil.test', '/../evil.test/x', '//evil.test', '/\\evil.test', '/a/..//evil.test']) {
    test(`${trick} lands on the cabinet of this site`, async ({ page, createUser, baseURL }) => {
      const name = uniqueName('trick');
      await createUser(name);
      await page.goto(`/?next=${encodeURIComponent(trick)}`);
      await logIn(page, name);
      await expect(page).toHaveURL(/\/cabinet$/);
      expect(new URL(page.url()).host).toBe(new URL(baseURL!).host);
    });
  }
});

test.describe('log out', () => {
  test('ends the session and lands on the login form', async ({ page }) => {
    await registeredMember(page, 'logout');
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
    await expect(page.getByRole('status')).toHaveText('You are logged out.');
    await page.goto('/cabinet');
    await expect(page).toHaveURL(/\/\?next=\/cabinet$/);
  });

  test('GET /logout asks first', async ({ page }) => {
    await registeredMember(page, 'confirm');
    await page.goto('/logout');
    await expect(page.getByRole('heading', { name: 'Log out?' })).toBeVisible();
    await page.goto('/cabinet');
    await expect(page).toHaveURL(/\/cabinet$/);
  });

  test('Back after logout never shows the cabinet', async ({ page }) => {
    const name = await registeredMember(page, 'back');
    await page.getByRole('button', { name: 'Log out' }).click();
    await expect(page).toHaveURL(/\/$/);
    await page.goBack();
    await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toHaveCount(0);
    await expect(page.getByText(name)).toHaveCount(0);
    await expect(page.getByRole('heading', { name: 'Log in' })).toBeVisible();
    const cache = await page.evaluate(() => sessionStorage.getItem('htmx-history-cache') ?? '');
    expect(cache).not.toContain('Welcome');
    expect(cache).not.toContain(name);
  });
});
