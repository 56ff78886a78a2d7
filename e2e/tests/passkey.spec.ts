import * as path from 'node:path';
import type { CDPSession, Page } from '@playwright/test';
import { expect, expectAccessible, PASSWORD, registeredMember, test } from './fixtures';

// The "passkeys" project: a server whose public URL is http://localhost:PORT (WebAuthn
// needs a domain name), and Chromium's virtual authenticator (CDP WebAuthn domain) in
// place of a phone or a security key: a platform authenticator that keeps discoverable
// credentials and verifies its user.

/**
 * Chromium's virtual authenticator answers a passkey autofill request (conditional
 * mediation) at once, as if the member picked the passkey the moment the login page
 * opened; tests of the button play a browser without autofill.
 */
async function withoutAutofill(page: Page) {
  await page.addInitScript(() => {
    if (window.PublicKeyCredential) {
      PublicKeyCredential.isConditionalMediationAvailable = async () => false;
    }
  });
}

async function authenticator(page: Page, autofill = false): Promise<{ cdp: CDPSession; id: string }> {
  if (!autofill) await withoutAutofill(page);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

async function credentials(key: { cdp: CDPSession; id: string }) {
  const { credentials: list } = await key.cdp.send('WebAuthn.getCredentials', {
    authenticatorId: key.id,
  });
  return list;
}

async function logOut(page: Page) {
  await page.goto('/logout');
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/$/);
}

/** Adds a passkey called `name` on the account page (the member's password given). */
async function addPasskey(page: Page, name: string) {
  await page.goto('/account');
  const section = page.locator('#passkeys');
  await section.getByLabel('Name it').fill(name);
  await section.getByLabel('Your password').fill(PASSWORD);
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.locator('#passkeys').getByRole('status')).toHaveText('Passkey added. You can log in with it now.');
}

/** Checks the page with axe, then saves a screenshot of it (or of one section). */
async function shot(page: Page, name: string, section?: string) {
  await expectAccessible(page);
  const file = path.join(__dirname, '..', 'screenshots', `${name}-desktop.png`);
  if (section) {
    await page.locator(section).screenshot({ path: file, caret: 'initial' });
  } else {
    await page.screenshot({ path: file, fullPage: true, caret: 'initial' });
  }
}

test('a passkey is added on the account page, logs in with no name typed, and is removed', async ({ page }) => {
  const key = await authenticator(page);
  const name = await registeredMember(page, 'pk');
  await page.goto('/account');
  let section = page.locator('#passkeys');
  await expect(section).toBeVisible();

  // A wrong password starts no ceremony: the authenticator makes nothing.
  await section.getByLabel('Name it').fill('Laptop');
  await section.getByLabel('Your password').fill('not my password');
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  section = page.locator('#passkeys');
  await expect(section.getByLabel('Your password')).toHaveAttribute('aria-invalid', 'true');
  await expect(section.getByLabel('Name it')).toHaveValue('Laptop');
  expect(await credentials(key)).toHaveLength(0);

  await section.getByLabel('Your password').fill(PASSWORD);
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  section = page.locator('#passkeys');
  await expect(section.getByRole('status')).toHaveText('Passkey added. You can log in with it now.');
  await expect(section.getByRole('listitem')).toContainText('Laptop');
  await expect(section.getByRole('listitem')).toContainText('not used yet');
  const made = await credentials(key);
  expect(made).toHaveLength(1);
  expect(made[0].isResidentCredential, 'discoverable, so login needs no name').toBe(true);
  // The user handle is a random id, not the name.
  expect(Buffer.from(made[0].userHandle ?? '', 'base64')).toHaveLength(16);
  await shot(page, 'passkeys', '#passkeys');

  await logOut(page);
  await shot(page, 'login-passkey');
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText(name);
  const used = await credentials(key);
  expect(used[0].signCount, 'the authenticator signed once more').toBeGreaterThan(made[0].signCount);

  await page.goto('/account');
  section = page.locator('#passkeys');
  await expect(section.getByRole('listitem')).toContainText('last used');
  await section.getByText('Remove', { exact: true }).click();
  await section.getByLabel('Your password').first().fill(PASSWORD);
  await section.getByRole('button', { name: 'Remove “Laptop”' }).click();
  await expect(page.locator('#passkeys').getByRole('status')).toHaveText('Passkey removed.');
  await expect(page.locator('#passkeys').getByRole('listitem')).toHaveCount(0);

  // The authenticator still holds the key, but the site has forgotten it.
  await logOut(page);
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  await expect(page.getByRole('alert')).toHaveText(
    'That passkey is not (or no longer) registered here. Log in with your password.',
  );
  await expect(page).toHaveURL(/\/$/);
});

test('passkey autofill: the username field offers the passkey, and picking it logs in', async ({ page }) => {
  // A browser with autofill: Chromium's virtual authenticator picks the one passkey
  // the moment the login page asks (as a member picking it from the field would).
  const key = await authenticator(page, true);
  // What the page asks the browser for: autofill must ask quietly (conditional
  // mediation), never with a prompt over the login form.
  const asked: string[] = [];
  await page.exposeFunction('noteAsked', (mediation: string) => asked.push(mediation));
  await page.addInitScript(() => {
    const get = navigator.credentials.get.bind(navigator.credentials);
    navigator.credentials.get = (options) => {
      (window as unknown as { noteAsked: (m: string) => void }).noteAsked(String(options?.mediation));
      return get(options);
    };
  });
  const name = await registeredMember(page, 'pkauto');
  await addPasskey(page, 'Phone');
  const made = await credentials(key);

  await page.goto('/logout');
  const options = page.waitForRequest((r) => r.url().endsWith('/login/passkey/options'));
  await page.getByRole('button', { name: 'Log out' }).click();
  // The login page asks for autofill on its own: no button, no name typed.
  const request = await options;
  expect(new URLSearchParams(request.postData() ?? '').get('username') ?? '').toBe('');
  await expect(page).toHaveURL(/\/cabinet$/);
  expect(asked, 'one quiet request, no prompt').toEqual(['conditional']);
  await expect(page.getByRole('heading', { level: 1 })).toContainText(name);
  const used = await credentials(key);
  expect(used[0].signCount, 'the authenticator signed the autofill request').toBeGreaterThan(made[0].signCount);

  // The journal says how.
  await page.goto('/account');
  await expect(page.locator('#activity li').first()).toContainText('(passkey)');
});

test('passkey autofill is offered again by a login form htmx swaps in', async ({ page }) => {
  const key = await authenticator(page, true);
  await registeredMember(page, 'pkswap');
  await addPasskey(page, 'Phone');

  // The page's own offer finds the member unable to verify (it stays on the form)…
  await key.cdp.send('WebAuthn.setUserVerified', { authenticatorId: key.id, isUserVerified: false });
  await page.goto('/logout');
  const first = page.waitForResponse((r) => r.url().endsWith('/login/passkey/options'));
  await page.getByRole('button', { name: 'Log out' }).click();
  await first;
  await expect(page.getByLabel('Username')).toBeVisible();
  // …then a wrong password swaps the form in, and its offer is picked.
  await key.cdp.send('WebAuthn.setUserVerified', { authenticatorId: key.id, isUserVerified: true });
  const again = page.waitForResponse((r) => r.url().endsWith('/login/passkey/options'));
  await page.getByLabel('Username').fill('nobody-in-particular');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await again;
  await expect(page).toHaveURL(/\/cabinet$/);
});

test('a cancelled passkey prompt says so and leaves the password form working', async ({ page }) => {
  const key = await authenticator(page);
  // No credential, and the user turns the prompt down.
  await key.cdp.send('WebAuthn.setUserVerified', { authenticatorId: key.id, isUserVerified: false });
  await page.goto('/');
  // Where passkeys are on, the username field asks the browser to list them too.
  await expect(page.getByLabel('Username')).toHaveAttribute('autocomplete', 'username webauthn');
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  await expect(page.getByRole('alert')).toHaveText(
    'No passkey was used. Try again, or log in with your password.',
  );
  await expect(page.getByLabel('Username')).toBeEditable();
});

test('without JavaScript the passkey parts are not shown, and the rest works', async ({ browser, baseURL }) => {
  const context = await browser.newContext({ baseURL, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/');
  await expect(page.getByRole('button', { name: 'Log in with a passkey' })).toBeHidden();
  await registeredMember(page, 'pknojs');
  await page.goto('/account');
  await expect(page.locator('#passkeys')).toBeHidden();
  await expect(page.getByRole('heading', { name: 'Two-step login' })).toBeVisible();
  await context.close();
});
