import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, PASSWORD, uniqueName } from './fixtures';

// What the OpenID Connect specs share: Wicket at localhost (serve-oidc.sh), its
// invitations, and the claims Apache's page shows.

const root = resolve(__dirname, '..', '..');
const dir = process.env.WICKET_E2E_OIDC_DIR ?? '';
const bin = resolve(root, process.env.WICKET_BIN ?? 'target/release/wicket');
export const wicket = `http://localhost:${process.env.WICKET_E2E_OIDC_PORT}`;

/** Registers a new member through an invitation (joining `groups`), logged in. */
export async function member(page: Page, prefix: string, ...groups: string[]): Promise<string> {
  const args = ['--data-dir', join(dir, 'data'), '--sessions-dir', join(dir, 'sessions'),
    '--public-url', wicket, '--registration', 'invite', 'invite', 'create', ...groups.flatMap((g) => ['--group', g])];
  const link = execFileSync(bin, args).toString().trim();
  const name = uniqueName(prefix);
  await page.goto(link);
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/cabinet$/);
  return name;
}

/** The account id Wicket keeps for `name`: what `sub` must be. */
export function accountId(name: string): string {
  return JSON.parse(readFileSync(join(dir, 'data', 'users', `${name}.json`), 'utf8')).id;
}

export async function logOutOfWicket(page: Page) {
  await page.goto(`${wicket}/logout`);
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(`${wicket}/`);
}

/** The claim Apache's page shows. */
export function claim(page: Page, name: string) {
  return page.locator(`[data-claim="${name}"]`);
}
