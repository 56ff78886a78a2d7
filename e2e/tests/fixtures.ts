import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { expect, test as base, type Page } from '@playwright/test';

export { expect };

export const PASSWORD = 'correct horse battery';

/** A name no other test (or run) uses, so tests are independent of order. */
export function uniqueName(prefix: string): string {
  const stamp = Date.now().toString(36).slice(-5);
  const random = Math.random().toString(36).slice(2, 7);
  return `${prefix}_${stamp}${random}`.slice(0, 32);
}

type Fixtures = {
  problems: string[];
  /** Creates a user over HTTP (as another browser would), without using the page. */
  createUser: (name: string) => Promise<void>;
};

/**
 * Every test's page is watched: a console error (CSP violations are reported there),
 * an uncaught exception, any request to a host other than the site's, and any static
 * file (script, style, image) that fails to load or answers 4xx/5xx fail the test.
 * Chromium also logs every 4xx answer as a console error; a page's own 4xx are the
 * expected answers to bad forms (401, 403, 404, 422, 429), so only those console lines
 * are let through: a missing static file is caught by its response instead.
 */
export const test = base.extend<Fixtures>({
  createUser: async ({ playwright, baseURL }, use) => {
    await use(async (name: string) => {
      const api = await playwright.request.newContext({ baseURL, ignoreHTTPSErrors: true });
      const form = await (await api.get('/register/')).text();
      const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(form)?.[1] ?? '';
      const resp = await api.post('/register/', {
        form: { username: name, password: PASSWORD, confirm: PASSWORD, csrf },
        maxRedirects: 0,
      });
      expect(resp.status(), `creating ${name}`).toBe(303);
      await api.dispose();
    });
  },
  problems: [
    async ({ page, baseURL }, use, testInfo) => {
      const site = new URL(baseURL ?? 'http://127.0.0.1').hostname;
      // Behind the proxies (guard.spec.ts) the site is a family of names: the login
      // and the apps it guards, all under wicket.test. An app logging in through
      // Wicket's provider (oidc*.spec.ts) is at 127.0.0.1 and Wicket at localhost.
      const family = site.endsWith('.wicket.test') ? '.wicket.test' : null;
      const loopback = ['127.0.0.1', 'localhost'];
      const oidc = /oidc[^/]*\.spec\.ts$/.test(testInfo.file);
      const ours = (host: string) => host === site || (family !== null && host.endsWith(family))
        || (oidc && loopback.includes(host) && loopback.includes(site));
      const problems: string[] = [];
      page.on('console', (msg) => {
        const expected4xx = /^Failed to load resource: the server responded with a status of 4\d\d/;
        if (msg.type() === 'error' && !expected4xx.test(msg.text())) {
          problems.push(`console (${page.url()}): ${msg.text()}`);
        }
      });
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('response', (resp) => {
        if (new URL(resp.url()).pathname.startsWith('/static/') && resp.status() >= 400) {
          problems.push(`static file ${resp.url()} answered ${resp.status()}`);
        }
      });
      page.on('requestfailed', (req) => {
        // ERR_ABORTED: the page navigated away while it loaded (Back, a redirect).
        const aborted = req.failure()?.errorText === 'net::ERR_ABORTED';
        if (new URL(req.url()).pathname.startsWith('/static/') && !aborted) {
          problems.push(`static file ${req.url()} failed: ${req.failure()?.errorText}`);
        }
      });
      await page.route('**/*', (route) => {
        const url = new URL(route.request().url());
        if (!ours(url.hostname)) {
          problems.push(`request left ${site}: ${url.href}`);
          return route.abort();
        }
        return route.continue();
      });
      await use(problems);
      expect(problems, 'console errors, CSP violations or off-site requests').toEqual([]);
    },
    { auto: true },
  ],
});

/** Fills and submits the registration form (from wherever the page is). */
export async function register(page: Page, name: string, password = PASSWORD, confirm = password) {
  await page.goto('/register/');
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Password again').fill(confirm);
  await page.getByRole('button', { name: 'Create account' }).click();
}

/**
 * Waits until htmx has finished with the page (no request, swap or settle under way):
 * after a swapped form, htmx focuses its first field as it settles, and text typed
 * before that can land in the wrong field. A page without htmx is settled already.
 */
export async function htmxSettled(page: Page) {
  await page.waitForFunction(() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling'));
}

/** Fills and submits the login form on the current page. */
export async function logIn(page: Page, name: string, password = PASSWORD) {
  await htmxSettled(page);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
}

/** Registers a fresh user, ending on the cabinet; returns the name. */
export async function registeredMember(page: Page, prefix = 'member'): Promise<string> {
  const name = uniqueName(prefix);
  await register(page, name);
  await expect(page).toHaveURL(/\/cabinet$/);
  return name;
}

/** Asserts axe finds no serious or critical accessibility violation on the page. */
export async function expectAccessible(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.help}`)).toEqual([]);
}

/**
 * Counts full page loads in the main frame: navigation requests and `load` events.
 * An htmx swap makes neither.
 */
export function countLoads(page: Page) {
  const counts = { navigations: 0, loads: 0 };
  page.on('request', (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) counts.navigations++;
  });
  page.on('load', () => counts.loads++);
  return counts;
}

/**
 * The newest mail to `address` whose subject contains `subject`, from the Maildir the
 * test server's SMTP server (python3-aiosmtpd, started by serve.sh) writes; waits for it.
 */
export async function mailTo(address: string, subject: string): Promise<string> {
  const dir = join(process.env.WICKET_E2E_MAILDIR ?? '', 'new');
  let found = '';
  await expect
    .poll(() => {
      const mails = readdirSync(dir)
        .map((name) => readFileSync(join(dir, name), 'utf8'))
        .filter((mail) => mail.includes(`To: ${address}`) && mail.includes(`Subject: ${subject}`));
      found = mails.at(-1) ?? '';
      return found !== '';
    }, { message: `a mail "${subject}" to ${address}`, timeout: 10_000 })
    .toBe(true);
  return found;
}

/** The path of the first link in `mail` under `prefix` (e.g. `/reset/`). */
export function linkIn(mail: string, prefix: string): string {
  const match = new RegExp(`https?://[^/\\s]+(${prefix}[0-9a-f]+)`).exec(mail);
  expect(match, `a ${prefix} link in the mail`).not.toBeNull();
  return match![1];
}

/** An authenticator app's code (RFC 6238, SHA-1, 6 digits) for the key the page shows. */
export function base32Decode(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/\s+/g, '')) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

export function totp(key: Buffer, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const hash = createHmac('sha1', key).update(counter).digest();
  const at = hash[hash.length - 1] & 0xf;
  const code = (hash.readUInt32BE(at) & 0x7fffffff) % 1_000_000;
  return code.toString().padStart(6, '0');
}

export const stepNow = () => Math.floor(Date.now() / 1000 / 30);

/** Turns two-step login on from `/account` (of `site`, default the page's) for the
 * logged-in member; returns the key. */
export async function turnOnTwoStep(page: Page, site = ''): Promise<Buffer> {
  await page.goto(`${site}/account`);
  const section = page.locator('#two-step-login');
  await section.getByRole('button', { name: 'Set up two-step login' }).click();
  const key = base32Decode(await section.locator('code.key').innerText());
  await section.getByLabel('Code from your app').fill(totp(key, stepNow()));
  await section.getByLabel('Your password').fill(PASSWORD);
  await section.getByRole('button', { name: 'Turn on two-step login' }).click();
  await expect(page.getByText('Two-step login is on.')).toBeVisible();
  return key;
}
