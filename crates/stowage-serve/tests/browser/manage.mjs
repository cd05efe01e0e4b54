// Manages downloads from the page, as a person does, with the download API's token handed to the page in
// the address's fragment: starts a download from the page's field, suspends and resumes it, follows it to
// the end, and removes it. Measures what the Rust test (tests/browser_manage.rs) checks.
//
// Input: the JSON in STOWAGE_BROWSER_CONFIG. Output: one JSON object on the last line of standard output.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.env.STOWAGE_BROWSER_CONFIG);
const report = { offLoopback: [], pageErrors: [], steps: [] };

function isLoopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    report.offLoopback.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  const notice = page.locator('#notice');
  const step = async (name, action, expected) => {
    await action();
    await page.waitForFunction(
      (text) => document.getElementById('notice').textContent.includes(text), expected, { timeout: 20000 });
    report.steps.push({ name, notice: await notice.textContent() });
  };

  // Without the token, the page only plays.
  await page.goto(config.base + '/');
  report.controlsWithoutToken = await page.locator('.download, button.suspend, button.remove').count();

  // Given to the page already open, as a person pastes it: the page loads again and takes it up.
  await page.goto(config.base + '/#token=' + config.token);
  await page.locator('.download').waitFor();
  report.hashAfter = await page.evaluate(() => location.hash);
  report.footer = await page.locator('footer').textContent();
  await page.locator('.download input[type="url"]').fill(config.url);
  await page.locator('.download input[type="text"]').fill(config.id);
  await step('start', () => page.locator('.download button.start').click(), 'Downloading ' + config.id);

  // The new asset shows once the page is loaded again; the token stays with the tab.
  const card = page.locator('#asset-' + config.id);
  for (let i = 0; i < 50 && (await card.count()) === 0; i++) {
    await page.waitForTimeout(100);
    await page.reload();
  }
  report.stateShown = await card.getAttribute('data-state');
  await step('suspend', () => card.locator('button.suspend').click(), 'Suspended ' + config.id);
  await step('resume', () => card.locator('button.resume').click(), 'Resumed ' + config.id);
  await page.waitForFunction(
    (id) => document.getElementById('asset-' + id)?.dataset.state === 'complete', config.id, { timeout: 60000 });
  report.stateAtEnd = await card.getAttribute('data-state');
  // The summary line follows the sizes as the download grows (the page was drawn before it began).
  report.summaryAtEnd = await page.locator('header .summary').textContent();
  report.sizeAtEnd = await card.locator('.size').textContent();
  report.screenshot = config.artifacts + '/page-manage.png';
  await page.screenshot({ path: report.screenshot });

  await card.locator('button.remove').click();
  report.removeAsks = await card.locator('button.remove').textContent();
  await step('remove', () => card.locator('button.remove').click(), 'Removed ' + config.id);
  report.cardsLeft = await page.locator('#asset-' + config.id).count();
} catch (e) {
  report.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}
