import type { Page } from '@playwright/test';
import { expect, PASSWORD, test } from './fixtures';
import { accountId, claim, logOutOfWicket, member, wicket } from './oidc';

// In the "passkeys" project (Chromium's virtual authenticator): a passkey logs a member
// in to the app behind Apache (serve-oidc.sh) through Wicket's provider.

const app = `http://127.0.0.1:${process.env.WICKET_E2E_APACHE_PORT}`;

async function authenticator(page: Page) {
  // The button, not autofill (the virtual authenticator answers autofill at once).
  await page.addInitScript(() => {
    if (window.PublicKeyCredential) {
      PublicKeyCredential.isConditionalMediationAvailable = async () => false;
    }
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
}

test('a passkey logs a member in to an app through Wicket', async ({ page }) => {
  await authenticator(page);
  const name = await member(page, 'oidcpk', 'staff');
  await page.goto(`${wicket}/account`);
  const section = page.locator('#passkeys');
  await section.getByLabel('Name it').fill('Laptop');
  await section.getByLabel('Your password').fill(PASSWORD);
  await section.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.locator('#passkeys').getByRole('status')).toHaveText('Passkey added. You can log in with it now.');
  await logOutOfWicket(page);

  await page.goto(`${app}/protected/index.shtml`);
  await expect(page).toHaveURL(new RegExp(`^${wicket}/\\?next=/oidc/continue`));
  await page.getByRole('button', { name: 'Log in with a passkey' }).click();
  await expect(page.getByRole('heading', { name: 'Allow Team pages?' })).toBeVisible();
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page).toHaveURL(`${app}/protected/index.shtml`);
  await expect(claim(page, 'sub')).toHaveText(accountId(name));
  await expect(claim(page, 'preferred_username')).toHaveText(name);
  await expect(claim(page, 'groups')).toHaveText('staff');
  await expect(claim(page, 'amr')).toHaveText('hwk,user');
  await expect(claim(page, 'acr')).toHaveText('https://refeds.org/profile/mfa');
});
