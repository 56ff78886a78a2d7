import { execFileSync, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Page, TestInfo } from '@playwright/test';
import {
  expect, expectAccessible, logIn, PASSWORD, stepNow, test, totp, turnOnTwoStep, uniqueName,
} from './fixtures';

// Apps behind Wicket (serve-guard.sh): the same small app behind nginx (auth_request)
// and behind Caddy (forward_auth), Wicket at login.wicket.test sharing its session
// cookie with *.wicket.test, registration by invitation. Runs in js and no-js.

const root = resolve(__dirname, '..', '..');
const dir = process.env.WICKET_E2E_GUARD_DIR ?? '';
const bin = resolve(root, process.env.WICKET_BIN ?? 'target/release/wicket');
const login = `https://login.wicket.test:${process.env.WICKET_E2E_GUARD_PORT}`;
const proxies = {
  nginx: `https://app.wicket.test:${process.env.WICKET_E2E_GUARD_PORT}`,
  caddy: `https://caddy.wicket.test:${process.env.WICKET_E2E_CADDY_PORT}`,
};

/** `wicket invite create` on the guard server's store: the link it prints. */
function invite(...groups: string[]): string {
  const args = ['--data-dir', join(dir, 'data'), '--sessions-dir', join(dir, 'sessions'),
    '--public-url', login, 'invite', 'create', ...groups.flatMap((g) => ['--group', g])];
  return execFileSync(bin, args).toString().trim();
}

/** `wicket user ACTION NAME` on the guard server's store: what it printed. */
function operator(action: string, name: string): string {
  const args = ['--data-dir', join(dir, 'data'), '--sessions-dir', join(dir, 'sessions'), 'user', action, name];
  return execFileSync(bin, args).toString();
}

/** Registers a new member through an invitation (in `page`), ending logged in. */
async function invited(page: Page, prefix: string, ...groups: string[]): Promise<string> {
  const name = uniqueName(prefix);
  await page.goto(invite(...groups));
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  return name;
}

async function logOut(page: Page) {
  await page.goto(`${login}/logout`);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(`${login}/`);
}

/** What the app says it received under `header`. */
const received = (page: Page, header: string) => page.locator(`[data-header="${header}"]`);

async function shot(page: Page, testInfo: TestInfo, name: string) {
  if (testInfo.project.name !== 'guard-js') return;
  await expectAccessible(page);
  await page.screenshot({ path: join(__dirname, '..', 'screenshots', `${name}-desktop.png`), fullPage: true });
}

for (const [proxy, app] of Object.entries(proxies)) {
  test(`${proxy}: nobody is sent to log in, then back to the page, named by the app`, async ({ page }, testInfo) => {
    const name = await invited(page, 'guard');
    await logOut(page);
    await page.goto(`${app}/wiki/page?x=1`);
    await expect(page).toHaveURL(new RegExp(`^${login}/\\?rd=`));
    await shot(page, testInfo, `guard-login-${proxy}`);
    await logIn(page, name);
    await expect(page).toHaveURL(`${app}/wiki/page?x=1`);
    await expect(received(page, 'Remote-User')).toHaveText(name);
    // Nobody's groups: nginx drops an empty header, Caddy passes it on empty.
    await expect(received(page, 'Remote-Groups')).toHaveText(/^(|\(none\))$/);

    // Logging out on Wicket ends access to the app at once.
    await logOut(page);
    await page.goto(`${app}/wiki/page`);
    await expect(page).toHaveURL(new RegExp(`^${login}/\\?rd=`));
  });

  test(`${proxy}: a group's pages refuse a member outside it and admit one inside`, async ({ page, browser }, testInfo) => {
    await invited(page, 'outsider');
    await page.goto(`${app}/team/board`);
    await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
    await shot(page, testInfo, `guard-forbidden-${proxy}`);
    await expect(page).toHaveURL(`${app}/team/board`);

    const other = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: testInfo.project.use.javaScriptEnabled });
    const insider = await other.newPage();
    const name = await invited(insider, 'insider', 'team');
    await insider.goto(`${app}/team/board`);
    await expect(received(insider, 'Remote-User')).toHaveText(name);
    await expect(received(insider, 'Remote-Groups')).toHaveText('team');
    await other.close();
  });
}

test('a two-step page asks a member for a code first, then returns to it', async ({ page }, testInfo) => {
  await invited(page, 'stepper');
  const key = await turnOnTwoStep(page);

  // This session began with a password only.
  await page.goto(`${proxies.nginx}/strong`);
  await expect(page.getByRole('heading', { name: 'Confirm it is you' })).toBeVisible();
  await shot(page, testInfo, 'guard-step-up');
  await page.getByLabel(/^Code from your authenticator app/).fill('000000');
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByText('That code is not right.')).toBeVisible();
  await page.getByLabel(/^Code from your authenticator app/).fill(totp(key, stepNow() + 1));
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(`${proxies.nginx}/strong`);
  await expect(received(page, 'Remote-User')).not.toHaveText('');
  // Through Caddy too: the stepped-up session is the one shared cookie.
  await page.goto(`${proxies.caddy}/strong`);
  await expect(page.getByRole('heading', { name: 'Protected app' })).toBeVisible();
});

test('an invitation registers into its group once', async ({ page, browser }, testInfo) => {
  const link = invite('team');
  await page.goto(link);
  const name = uniqueName('once');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  await page.goto('/account');
  await expect(page.locator('dd.groups')).toHaveText('team');

  const other = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: testInfo.project.use.javaScriptEnabled });
  const second = await other.newPage();
  await second.goto(link);
  await expect(second.getByRole('heading', { name: 'This invitation does not work' })).toBeVisible();
  await expect(second.getByLabel('Username')).toHaveCount(0);
  await second.goto(`${login}/register/`);
  await expect(second.getByRole('heading', { name: 'Registration is by invitation' })).toBeVisible();
  await second.goto(`${login}/`);
  await expect(second.getByRole('link', { name: 'Create an account' })).toHaveCount(0);
  await other.close();
});

test('a client cannot name itself to the app', async ({ page }) => {
  await page.setExtraHTTPHeaders({ 'Remote-User': 'admin', 'Remote-Groups': 'admins' });
  for (const app of Object.values(proxies)) {
    await page.goto(`${app}/open`);
    await expect(page.getByRole('heading', { name: 'Protected app' })).toBeVisible();
    await expect(received(page, 'Remote-User')).not.toHaveText('admin');
    await expect(received(page, 'Remote-Groups')).not.toHaveText('admins');
  }
});

test('closed registration shows no form', async ({ page }) => {
  const port = Number(execFileSync('python3', ['-c',
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])']).toString());
  const server = spawn(bin, ['--addr', `127.0.0.1:${port}`, '--registration', 'closed',
    '--public-url', `http://closed.wicket.test:${port}`,
    '--data-dir', join(dir, `closed-${port}`), '--sessions-dir', join(dir, `closed-${port}-sessions`),
    '--static-dir', join(root, 'static'), '--scrypt-log-n', '4'], { stdio: 'ignore' });
  try {
    await expect.poll(async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
      } catch {
        return 0;
      }
    }).toBe(200);
    await page.goto(`http://closed.wicket.test:${port}/register/`);
    await expect(page.getByRole('heading', { name: 'Registration is closed' })).toBeVisible();
    await expect(page.getByLabel('Password')).toHaveCount(0);
  } finally {
    server.kill();
  }
});

test('the operator disables a member and asks another for a new password: the apps wait', async ({ page }, testInfo) => {
  const app = `${proxies.nginx}/wiki/page`;
  const name = await invited(page, 'renewer');
  expect(operator('require-password-change', name)).toContain('must choose a new password');
  await page.goto(app);
  await expect(page).toHaveURL(new RegExp(`^${login}/\\?rd=`));
  await expect(page.getByText('asks for a new password')).toBeVisible();
  await logIn(page, name);
  // Back at the app, which sends the member to choose the password first.
  await expect(page).toHaveURL(new RegExp(`^${login}/account`));
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
  await shot(page, testInfo, 'guard-new-password');
  const fresh = `${PASSWORD} renewed`;
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByLabel('New password', { exact: true }).fill(fresh);
  await page.getByLabel('New password again').fill(fresh);
  await page.getByRole('button', { name: 'Change password' }).click();
  await expect(page.getByText('Your password was changed.')).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Choose a new password' })).toHaveCount(0);
  await page.goto(app);
  await expect(received(page, 'Remote-User')).toHaveText(name);

  expect(operator('disable', name)).toContain(`disabled ${name}; ended 1 session(s)`);
  await page.goto(app);
  await expect(page).toHaveURL(new RegExp(`^${login}/\\?rd=`));
  await expect(page.getByText("the site's operator disabled this account")).toBeVisible();
  await logIn(page, name, fresh);
  await expect(page.getByText('This account is disabled.')).toBeVisible();
  await shot(page, testInfo, 'guard-disabled');
});
