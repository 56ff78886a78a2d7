import * as https from 'node:https';
import * as http from 'node:http';
import {
  expect, logIn, PASSWORD, registeredMember, test, uniqueName,
} from './fixtures';

// The `tls` project: Wicket behind nginx with TLS, as deploy/ sets it up
// (serve-tls.sh), with --secure-cookies --trusted-proxies 127.0.0.1 --public-url.

const tlsPort = Number(process.env.WICKET_E2E_TLS_PORT);
const httpPort = Number(process.env.WICKET_E2E_HTTP_PORT);

type Answer = { status: number; headers: http.IncomingHttpHeaders; body: string };

/** One HTTPS request from the loopback address `from` (127.0.0.2, …) to nginx. */
function request(
  from: string, method: string, path: string,
  headers: Record<string, string> = {}, body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: tlsPort, localAddress: from, method, path, headers,
      rejectUnauthorized: false,
    }, (resp) => {
      let data = '';
      resp.setEncoding('utf8');
      resp.on('data', (chunk) => { data += chunk; });
      resp.on('end', () => resolve({ status: resp.statusCode ?? 0, headers: resp.headers, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

/** Registers `name` as a client at `from` would (GET the form, POST it back). */
async function registerFrom(from: string, name: string, forwardedFor?: string): Promise<number> {
  const extra: Record<string, string> = forwardedFor ? { 'X-Forwarded-For': forwardedFor } : {};
  const form = await request(from, 'GET', '/register/', extra);
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(form.body)?.[1] ?? '';
  const cookies = (form.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]).join('; ');
  const body = new URLSearchParams({ username: name, password: PASSWORD, confirm: PASSWORD, csrf }).toString();
  const answer = await request(from, 'POST', '/register/', {
    ...extra,
    Cookie: cookies,
    'Content-Type': 'application/x-www-form-urlencoded',
    'Content-Length': String(Buffer.byteLength(body)),
  }, body);
  return answer.status;
}

test('register, log out and log in over TLS: __Host- cookies, Secure, HSTS', async ({ page, context }) => {
  const first = await page.goto('/register/');
  expect(first?.headers()['strict-transport-security']).toMatch(/max-age=\d+/);
  const name = await registeredMember(page, 'tls');
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();

  const cookies = await context.cookies();
  expect(cookies.map((c) => c.name).sort()).toEqual(['__Host-wicket_csrf', '__Host-wicket_device', '__Host-wicket_session']);
  for (const cookie of cookies) {
    expect(cookie.secure, cookie.name).toBe(true);
    expect(cookie.path, cookie.name).toBe('/');
    expect(cookie.domain, cookie.name).toBe('127.0.0.1');
  }

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/$/);
  expect((await context.cookies()).map((c) => c.name)).not.toContain('__Host-wicket_session');

  await logIn(page, name);
  await expect(page).toHaveURL(/\/cabinet$/);
  await expect(page.getByRole('heading', { name: `Welcome, ${name}!` })).toBeVisible();
});

test('the sessions list shows the client\'s own address, not nginx\'s', async () => {
  const form = await request('127.0.0.5', 'GET', '/register/');
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(form.body)?.[1] ?? '';
  const cookies = (form.headers['set-cookie'] ?? []).map((c) => c.split(';')[0]);
  const body = new URLSearchParams({
    username: uniqueName('five'), password: PASSWORD, confirm: PASSWORD, csrf,
  }).toString();
  const registered = await request('127.0.0.5', 'POST', '/register/', {
    Cookie: cookies.join('; '),
    'Content-Type': 'application/x-www-form-urlencoded',
    'Content-Length': String(Buffer.byteLength(body)),
  }, body);
  expect(registered.status).toBe(303);
  const session = (registered.headers['set-cookie'] ?? [])
    .map((c) => c.split(';')[0])
    .find((c) => c.startsWith('__Host-wicket_session='));
  expect(session).toBeTruthy();
  const account = await request('127.0.0.5', 'GET', '/account', { Cookie: `${session}` });
  expect(account.status).toBe(200);
  const sessions = account.body.slice(account.body.indexOf('id="sessions"'));
  expect(sessions).toContain('127.0.0.5');
});

test('plain HTTP is sent to HTTPS', async () => {
  const answer = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: httpPort, path: '/cabinet' }, resolve).on('error', reject);
  });
  expect(answer.statusCode).toBe(301);
  expect(answer.headers.location).toBe(`https://127.0.0.1:${tlsPort}/cabinet`);
});

test('another Host is refused through nginx too', async () => {
  const answer = await request('127.0.0.1', 'GET', '/', { Host: `evil.example:${tlsPort}` });
  expect(answer.status).toBe(421);
});

test('throttling is keyed on the real client, whatever it claims', async () => {
  // serve-tls.sh allows 3 registrations per client address an hour.
  for (let i = 0; i < 3; i++) {
    expect(await registerFrom('127.0.0.2', uniqueName('two'))).toBe(303);
  }
  expect(await registerFrom('127.0.0.2', uniqueName('two'))).toBe(429);
  // Another client behind the same nginx is counted apart …
  expect(await registerFrom('127.0.0.3', uniqueName('three'))).toBe(303);
  // … and the first one's own X-Forwarded-For does not give it a new key.
  expect(await registerFrom('127.0.0.2', uniqueName('two'), '127.0.0.9')).toBe(429);
  expect(await registerFrom('127.0.0.2', uniqueName('two'), '198.51.100.7, 127.0.0.4')).toBe(429);
});
