import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, expectAccessible, logIn, stepNow, test, totp, turnOnTwoStep } from './fixtures';
import { accountId, claim, logOutOfWicket, member, wicket } from './oidc';

// An app that logs its users in through Wicket's OpenID Connect provider
// (serve-oidc.sh): Apache with mod_auth_openidc at 127.0.0.1 (the page's baseURL), a
// real relying party no one here wrote, and Wicket at localhost. Runs in js and no-js.

async function allow(page: Page, shot?: string) {
  await expect(page.getByRole('heading', { name: 'Allow Team pages?' })).toBeVisible();
  await expect(page.getByText('your username')).toBeVisible();
  await expect(page.getByText('the groups you are in')).toBeVisible();
  if (shot) {
    await expectAccessible(page);
    await page.screenshot({ path: join(__dirname, '..', 'screenshots', `${shot}-desktop.png`), fullPage: true });
  }
  await page.getByRole('button', { name: 'Allow' }).click();
}

test('a member logs in to an app behind Apache through Wicket, and logs out of both', async ({ page }, testInfo) => {
  const name = await member(page, 'oidc', 'staff');
  await logOutOfWicket(page);

  await page.goto('/protected/index.shtml');
  await expect(page).toHaveURL(new RegExp(`^${wicket}/\\?next=/oidc/continue`));
  await logIn(page, name);
  await allow(page, testInfo.project.name === 'oidc-js' ? 'oidc-consent' : undefined);
  await expect(page).toHaveURL(/\/protected\/index\.shtml$/);
  await expect(page.getByRole('heading', { name: 'Team pages' })).toBeVisible();
  await expect(claim(page, 'sub')).toHaveText(accountId(name));
  await expect(page.locator('[data-user]')).toHaveText(accountId(name));
  await expect(claim(page, 'preferred_username')).toHaveText(name);
  await expect(claim(page, 'groups')).toHaveText('staff');
  await expect(claim(page, 'amr')).toHaveText('pwd');

  // The account page lists the app; the consent is remembered.
  await page.goto(`${wicket}/account`);
  await expect(page.locator('#apps')).toContainText('Team pages');
  await expect(page.locator('#apps')).toContainText('last used');
  if (testInfo.project.name === 'oidc-js') {
    await expectAccessible(page);
    await page.locator('#apps').screenshot({ path: join(__dirname, '..', 'screenshots', 'oidc-apps-desktop.png') });
  }

  // The app's logout goes through Wicket's, which asks, then returns to the app.
  await page.goto('/protected/index.shtml');
  await page.getByRole('link', { name: 'Log out' }).click();
  await expect(page.getByRole('heading', { name: 'Log out of Wicket?' })).toBeVisible();
  await expect(page.getByText('Team pages asks to log you out.')).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/loggedout\.html$/);
  await expect(page.getByRole('heading', { name: 'You are logged out of the team pages' })).toBeVisible();
  await page.goto(`${wicket}/cabinet`);
  await expect(page).toHaveURL(`${wicket}/?next=/cabinet`);
});

test('with two-step login on, the app gets the member only after the code', async ({ page }) => {
  const name = await member(page, 'oidc2', 'staff');
  const key = await turnOnTwoStep(page, wicket);
  await logOutOfWicket(page);

  await page.goto('/protected/index.shtml');
  await logIn(page, name);
  await expect(page.getByRole('heading', { name: 'Two-step login' })).toBeVisible();
  await page.getByLabel('Code').fill(totp(key, stepNow() + 1));
  await page.getByRole('button', { name: 'Log in' }).click();
  await allow(page);
  await expect(page).toHaveURL(/\/protected\/index\.shtml$/);
  await expect(claim(page, 'sub')).toHaveText(accountId(name));
  await expect(claim(page, 'amr')).toHaveText('pwd,otp,mfa');
  await expect(claim(page, 'acr')).toHaveText('https://refeds.org/profile/mfa');
});

test('removing an app on the account page makes it ask again', async ({ page }) => {
  const name = await member(page, 'oidc3');
  await page.goto('/protected/index.shtml');
  await allow(page);
  await expect(claim(page, 'preferred_username')).toHaveText(name);
  await expect(claim(page, 'groups')).toHaveText('');

  await page.goto(`${wicket}/account`);
  const apps = page.locator('#apps');
  await apps.getByRole('button', { name: 'Remove access of Team pages' }).click();
  await expect(page.locator('#apps').getByRole('status')).toHaveText("The app's access was removed: it must ask again.");
  await expect(page.locator('#apps')).toContainText('No app logs you in');
});

test('openid-client, a certified relying party, runs every grant against Wicket', async ({ page }, testInfo) => {
  test.skip(testInfo.project.name !== 'oidc-js', 'one run is enough: the browser part is a plain login');
  const client = await import('openid-client');
  const secret = readFileSync(join(process.env.WICKET_E2E_OIDC_DIR ?? '', 'client-secret'), 'utf8');
  const redirect = new URL('/callback.html', testInfo.project.use.baseURL).href;
  const config = await client.discovery(
    new URL(wicket), 'node', { client_secret: secret, id_token_signed_response_alg: 'EdDSA' },
    client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] },
  );
  expect(config.serverMetadata().issuer).toBe(wicket);

  const name = await member(page, 'oidcnode', 'staff');
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope: 'openid profile groups',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  await page.goto(url.href);
  await expect(page.getByRole('heading', { name: 'Back at the app' })).toBeVisible();

  // The code, PKCE, state, iss and the ID token (signature, iss, aud, exp, nonce) are
  // all checked by the library.
  const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  const claims = tokens.claims();
  expect(claims?.sub).toBe(accountId(name));
  expect(claims?.preferred_username).toBe(name);
  expect(claims?.groups).toEqual(['staff']);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims?.sub ?? '');
  expect(info.preferred_username).toBe(name);

  // Refresh rotates; the old refresh token then revokes the family.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token ?? '');
  expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  expect(refreshed.claims()?.sub).toBe(accountId(name));
  await expect(client.refreshTokenGrant(config, tokens.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });
  await expect(client.fetchUserInfo(config, refreshed.access_token, claims?.sub ?? '')).rejects.toThrow();

  // A new family, revoked by the client.
  const again = client.buildAuthorizationUrl(config, {
    redirect_uri: redirect, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', state, nonce,
  });
  await page.goto(again.href);
  const second = await client.authorizationCodeGrant(config, new URL(page.url()), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  await client.tokenRevocation(config, second.refresh_token ?? '');
  await expect(client.refreshTokenGrant(config, second.refresh_token ?? '')).rejects.toMatchObject({ error: 'invalid_grant' });

  // The logout URL it builds is one Wicket follows, back to the app.
  const logout = client.buildEndSessionUrl(config, {
    id_token_hint: second.id_token ?? '',
    post_logout_redirect_uri: new URL('/loggedout.html', redirect).href,
    state: 'after',
  });
  await page.goto(logout.href);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(new URL('/loggedout.html?state=after', redirect).href);
});
