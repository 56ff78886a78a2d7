// Bytes on the wire for the login page as Chromium loads it: every request of a first
// visit (empty cache), then of a repeat visit in the same browser (a new navigation,
// as when following a link back), counted from Chromium's own network events
// (`encodedDataLength`: headers and compressed bodies; 0 for what the cache served).
//
// Usage: node e2e/bytes.mjs http://127.0.0.1:PORT   (bench/run.sh calls it)
import { chromium } from '@playwright/test';

const base = process.argv[2];
if (!base) {
  console.error('usage: node bytes.mjs BASE_URL');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--disable-gpu', '--disable-quic'],
});
const context = await browser.newContext();
const page = await context.newPage();
const cdp = await context.newCDPSession(page);
await cdp.send('Network.enable');

let bytes = 0;
let requests = 0;
cdp.on('Network.loadingFinished', (event) => {
  bytes += event.encodedDataLength;
  if (event.encodedDataLength > 0) requests += 1;
});

async function visit() {
  bytes = 0;
  requests = 0;
  await page.goto(`${base}/`, { waitUntil: 'networkidle' });
  return { bytes, requests };
}

const first = await visit();
const repeat = await visit();
await browser.close();
console.log(`first ${first.bytes} ${first.requests}`);
console.log(`repeat ${repeat.bytes} ${repeat.requests}`);
