import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '@playwright/test';

/** A free loopback port, asked of the OS once: workers inherit it through the env. */
function freePort(variable: string, fallback?: number): number {
  if (!process.env[variable]) {
    process.env[variable] = fallback !== undefined ? String(fallback) : execFileSync('python3', [
      '-c',
      'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])',
    ]).toString().trim();
  }
  return Number(process.env[variable]);
}

const port = freePort('WICKET_E2E_PORT', 5055);
const baseURL = `http://127.0.0.1:${port}`;
// The SMTP server serve.sh starts, and the Maildir the tests read mail from.
freePort('WICKET_E2E_SMTP_PORT');
if (!process.env.WICKET_E2E_MAILDIR) {
  process.env.WICKET_E2E_MAILDIR = mkdtempSync(join(tmpdir(), 'wicket-e2e-mail-'));
}
// Wicket behind nginx with TLS (serve-tls.sh, from deploy/): its own ports.
const tlsPort = freePort('WICKET_E2E_TLS_PORT');
freePort('WICKET_E2E_HTTP_PORT');
freePort('WICKET_E2E_UPSTREAM_PORT');
const tlsURL = `https://127.0.0.1:${tlsPort}`;
// A second server for passkeys, whose public URL is http://localhost:PORT: WebAuthn
// needs a domain name (localhost is one), never an IP address. Its own SMTP server.
const passkeyPort = freePort('WICKET_E2E_PASSKEY_PORT');
const passkeyURL = `http://localhost:${passkeyPort}`;
const passkeyServerEnv = {
  ...(process.env as Record<string, string>),
  WICKET_E2E_PORT: String(passkeyPort),
  WICKET_E2E_HOST: 'localhost',
  WICKET_E2E_SMTP_PORT: String(freePort('WICKET_E2E_PASSKEY_SMTP_PORT')),
  WICKET_E2E_MAILDIR: (process.env.WICKET_E2E_PASSKEY_MAILDIR ??= mkdtempSync(
    join(tmpdir(), 'wicket-e2e-passkey-mail-'),
  )),
};

// Apps behind Wicket (serve-guard.sh): nginx and Caddy on their own TLS ports, the
// names *.wicket.test mapped to loopback in the browser.
const guardPort = freePort('WICKET_E2E_GUARD_PORT');
freePort('WICKET_E2E_CADDY_PORT');
freePort('WICKET_E2E_GUARD_WICKET_PORT');
const appPort = freePort('WICKET_E2E_APP_PORT');
if (!process.env.WICKET_E2E_GUARD_DIR) {
  process.env.WICKET_E2E_GUARD_DIR = mkdtempSync(join(tmpdir(), 'wicket-e2e-guard-'));
}
const guardURL = `https://login.wicket.test:${guardPort}`;

// An app logging in through Wicket's OpenID Connect provider (serve-oidc.sh): Apache
// with mod_auth_openidc at 127.0.0.1, Wicket at localhost (a name: passkeys work).
const apachePort = freePort('WICKET_E2E_APACHE_PORT');
freePort('WICKET_E2E_OIDC_PORT');
if (!process.env.WICKET_E2E_OIDC_DIR) {
  process.env.WICKET_E2E_OIDC_DIR = mkdtempSync(join(tmpdir(), 'wicket-e2e-oidc-'));
}
const apacheURL = `http://127.0.0.1:${apachePort}`;
const guardUse = {
  baseURL: guardURL,
  ignoreHTTPSErrors: true,
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--disable-gpu', '--disable-quic', '--host-resolver-rules=MAP *.wicket.test 127.0.0.1'],
  },
};

export default defineConfig({
  testDir: './tests',
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  retries: 0,
  workers: 2,
  reporter: [['list']],
  timeout: 20_000,
  use: {
    baseURL,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--disable-gpu', '--disable-quic'],
    },
  },
  projects: [
    { name: 'js', testIgnore: /(tls|passkey|guard|oidc)\.spec\.ts/, use: { javaScriptEnabled: true } },
    { name: 'no-js', testIgnore: /(tls|passkey|guard|oidc)\.spec\.ts/, use: { javaScriptEnabled: false } },
    { name: 'guard-js', testMatch: /guard\.spec\.ts/, use: { ...guardUse, javaScriptEnabled: true } },
    { name: 'guard-no-js', testMatch: /guard\.spec\.ts/, use: { ...guardUse, javaScriptEnabled: false } },
    { name: 'oidc-js', testMatch: /\/oidc\.spec\.ts/, use: { baseURL: apacheURL, javaScriptEnabled: true } },
    { name: 'oidc-no-js', testMatch: /\/oidc\.spec\.ts/, use: { baseURL: apacheURL, javaScriptEnabled: false } },
    {
      name: 'passkeys',
      testMatch: /passkey\.spec\.ts/,
      use: { baseURL: passkeyURL, javaScriptEnabled: true },
    },
    {
      name: 'tls',
      testMatch: /tls\.spec\.ts/,
      use: { baseURL: tlsURL, ignoreHTTPSErrors: true, javaScriptEnabled: true },
    },
  ],
  webServer: [
    {
      command: './serve.sh',
      url: `${baseURL}/`,
      reuseExistingServer: !process.env.CI,
      timeout: 30_000,
    },
    {
      command: './serve.sh',
      url: `${passkeyURL}/`,
      env: passkeyServerEnv,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: './serve-guard.sh',
      url: `http://127.0.0.1:${appPort}/`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: './serve-oidc.sh',
      url: `${apacheURL}/loggedout.html`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: './serve-tls.sh',
      url: `${tlsURL}/`,
      ignoreHTTPSErrors: true,
      reuseExistingServer: false,
      timeout: 30_000,
    },
  ],
});
