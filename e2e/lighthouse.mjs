// Lighthouse (12.2.3, pinned: the newest that runs on Node 20) in Debian's Chromium
// against Wicket (serve.sh: $WICKET_BIN, else the release binary): `/`, `/register/`, `/cabinet` and `/account`, with the
// mobile and desktop presets. Fails below 100 in accessibility, best practices and
// SEO, or below 98 in performance. Reports (HTML and JSON) go to
// e2e/lighthouse-reports/, with a summary table in summary.md.
//
// Run after `cargo build --release`: `node lighthouse.mjs` (test.sh runs it on its own
// build).
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';
import puppeteer from 'puppeteer-core';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';

const here = dirname(fileURLToPath(import.meta.url));
const reports = join(here, 'lighthouse-reports');
const MIN = { performance: 0.98, accessibility: 1, 'best-practices': 1, seo: 1 };
const PAGES = ['/', '/register/', '/cabinet', '/account'];
const PRESETS = { mobile: undefined, desktop: desktopConfig };

const port = execFileSync('python3', ['-c',
  'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])',
]).toString().trim();
const base = `http://127.0.0.1:${port}`;

const server = spawn(join(here, 'serve.sh'), [], {
  env: { ...process.env, WICKET_E2E_PORT: port },
  stdio: ['ignore', 'ignore', 'inherit'],
});

async function until(check, what) {
  for (let i = 0; i < 300; i++) {
    try {
      if (await check()) return;
    } catch { /* not up yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Registers a member over HTTP and returns their session cookie (`name=value`). */
async function member() {
  const form = await fetch(`${base}/register/`);
  const csrfCookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(await form.text())?.[1] ?? '';
  const name = `lh_${Date.now().toString(36)}`;
  const resp = await fetch(`${base}/register/`, {
    method: 'POST',
    redirect: 'manual',
    headers: { Cookie: csrfCookie, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      username: name, password: 'correct horse battery', confirm: 'correct horse battery', csrf,
    }),
  });
  if (resp.status !== 303) throw new Error(`registering a member: ${resp.status}`);
  return resp.headers.getSetCookie().map((c) => c.split(';')[0])
    .find((c) => c.startsWith('wicket_session='));
}

let failed = false;
const rows = [];
let chrome;
try {
  await until(async () => (await fetch(`${base}/`)).ok, 'the server');
  const cookie = await member();
  mkdirSync(reports, { recursive: true });
  chrome = await chromeLauncher.launch({
    chromePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    chromeFlags: ['--headless=new', '--no-sandbox', '--disable-gpu'],
  });
  for (const page of PAGES) {
    if (page === '/cabinet') {
      // Members' pages: the browser holds the member's session cookie from here on
      // (Lighthouse keeps cookies between runs; the visitors' pages came first).
      const browser = await puppeteer.connect({ browserURL: `http://127.0.0.1:${chrome.port}` });
      const [name, value] = cookie.split('=');
      await browser.setCookie({ name, value, domain: '127.0.0.1', path: '/', httpOnly: true });
      await browser.disconnect();
    }
    for (const [preset, config] of Object.entries(PRESETS)) {
      const flags = {
        port: chrome.port,
        output: ['html', 'json'],
        logLevel: 'error',
        onlyCategories: Object.keys(MIN),
      };
      const result = await lighthouse(`${base}${page}`, flags, config);
      const { lhr } = result;
      if (lhr.finalDisplayedUrl !== `${base}${page}`) {
        throw new Error(`${page} ended on ${lhr.finalDisplayedUrl}`);
      }
      const slug = `${page.replace(/\//g, '') || 'login'}-${preset}`;
      writeFileSync(join(reports, `${slug}.html`), result.report[0]);
      writeFileSync(join(reports, `${slug}.json`), result.report[1]);
      const scores = Object.fromEntries(Object.keys(MIN).map((c) => [c, lhr.categories[c].score]));
      const low = Object.entries(scores).filter(([c, s]) => s < MIN[c]);
      rows.push(`| \`${page}\` | ${preset} | ${Object.values(scores).map((s) => Math.round(s * 100)).join(' | ')} |`);
      if (low.length) {
        failed = true;
        const audits = Object.values(lhr.audits)
          .filter((a) => a.score !== null && a.score < 1
            && !['notApplicable', 'informative', 'manual'].includes(a.scoreDisplayMode))
          .map((a) => `    ${a.id}: ${a.title} (${a.displayValue ?? a.score})`);
        console.error(`${page} (${preset}) below target: ${low.map(([c, s]) => `${c} ${Math.round(s * 100)}`).join(', ')}`);
        console.error(audits.join('\n'));
      }
    }
  }
} finally {
  await chrome?.kill();
  server.kill();
}

const table = [
  '| page | preset | performance | accessibility | best practices | SEO |',
  '|---|---|---|---|---|---|',
  ...rows,
].join('\n');
writeFileSync(join(reports, 'summary.md'), `${table}\n`);
console.log(table);
if (failed) {
  console.error('lighthouse: below the targets (performance 98, the rest 100); reports in e2e/lighthouse-reports/');
  process.exit(1);
}
