import * as path from 'node:path';
import { expect, expectAccessible, register, registeredMember, test, uniqueName } from './fixtures';
import type { Page } from '@playwright/test';

// Screenshots of every page at a desktop and a phone size, written on every run to
// e2e/screenshots/, plus axe checks. axe runs inside the page, so it needs JavaScript;
// the pages themselves are the same server-rendered HTML in both projects.
const viewports = {
  desktop: { width: 1280, height: 800 },
  phone: { width: 390, height: 844 },
};

const shots = path.join(__dirname, '..', 'screenshots');

async function look(page: Page, name: string, viewport: keyof typeof viewports) {
  // Nothing may be cut off: no horizontal scrolling at this width.
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow, `${name} scrolls sideways on ${viewport}`).toBeLessThanOrEqual(0);
  await page.screenshot({ path: path.join(shots, `${name}-${viewport}.png`), fullPage: true });
}

for (const [viewport, size] of Object.entries(viewports) as [keyof typeof viewports, { width: number; height: number }][]) {
  test.describe(`${viewport} pages`, () => {
    test.use({ viewport: size });

    test('every page looks finished and passes axe', async ({ page }, testInfo) => {
      test.skip(testInfo.project.name !== 'js', 'axe and the screenshots run with JavaScript');

      await page.goto('/');
      await expectAccessible(page);
      await look(page, 'login', viewport);

      await register(page, uniqueName('looks'), 'short', 'different');
      await expect(page.getByRole('alert').first()).toBeVisible();
      await expectAccessible(page);
      await look(page, 'register-errors', viewport);

      await registeredMember(page, 'looks');
      await expectAccessible(page);
      await look(page, 'cabinet', viewport);

      await page.goto('/account');
      await expectAccessible(page);
      await look(page, 'account', viewport);

      await page.goto('/logout');
      await expectAccessible(page);
      await look(page, 'logout', viewport);

      await page.goto('/no-such-page');
      await expectAccessible(page);
    });
  });
}
