// Plays an asset while it downloads, side by side: hls.js (as web apps embed it) and the page's own player
// (the browser's HLS player), each started on a bundle whose playlists are still growing, followed to the
// end. Measures what the Rust test (tests/browser_growing.rs) checks: how long after the go-ahead playback
// started, the frames played to the end, the requests made.
//
// Input: the JSON in STOWAGE_BROWSER_CONFIG. Protocol: prints `ready` once the browser runs, waits for a
// line on standard input (sent when the bundle's first segments are stored), then plays. Output: one JSON
// object on the last line of standard output.
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const config = JSON.parse(process.env.STOWAGE_BROWSER_CONFIG);
const report = { offLoopback: [], pageErrors: [], requests: [] };

function isLoopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}


// Installed in each page: resolves with the time playback started (the clock moving), and with the time
// it ended; records the media element's events.
const WATCH = `
window.watch = (video) => {
  window.timeline = [];
  window.playing = new Promise((resolve) => {
    const check = () => {
      if (video.currentTime > 0 && !video.paused) return resolve(Date.now());
      setTimeout(check, 20);
    };
    check();
  });
  window.ended = new Promise((resolve) => video.addEventListener('ended', () => resolve(Date.now()), { once: true }));
  for (const name of ['waiting', 'durationchange', 'error', 'loadedmetadata', 'seeking', 'seeked', 'playing']) {
    video.addEventListener(name, () => {
      const s = video.seekable;
      const seekable = s.length > 0 ? [s.start(0), s.end(s.length - 1)] : null;
      window.timeline.push({ name, t: video.currentTime, duration: video.duration, seekable });
    });
  }
};
window.quality = (video) => {
  const q = video.getVideoPlaybackQuality();
  return {
    frames: q.totalVideoFrames,
    dropped: q.droppedVideoFrames,
    currentTime: video.currentTime,
    duration: video.duration,
    ended: video.ended,
    error: video.error ? video.error.code + ' ' + video.error.message : null,
    timeline: window.timeline,
  };
};
`;

function within(promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(null), ms))]);
}

// Started and ended, measured from the go-ahead, and what the element played.
async function measure(page, selector, go, out) {
  const playing = await within(page.evaluate(() => window.playing), 20000);
  out.startMs = playing === null ? null : playing - go;
  const ended = await within(page.evaluate(() => window.ended), config.timeoutMs);
  out.endedAfterMs = ended === null ? null : ended - go;
  Object.assign(out, await page.evaluate((selector) => window.quality(document.querySelector(selector)), selector));
  return out;
}

// The page as a person uses it: the card of the asset, its Play button.
async function nativePlayer(page, go) {
  const out = {};
  await page.goto(config.base + '/');
  await page.evaluate(WATCH);
  const card = page.locator('#asset-' + config.id);
  out.state = await card.getAttribute('data-state');
  await card.locator('button.play').click();
  const selector = '#asset-' + config.id + ' .player video';
  await page.locator(selector).waitFor();
  await page.evaluate((selector) => window.watch(document.querySelector(selector)), selector);
  const playing = within(page.evaluate(() => window.playing), 20000).then(async () => {
    report.screenshot = config.artifacts + '/page-downloading.png';
    await page.screenshot({ path: report.screenshot });
  });
  await measure(page, selector, go, out);
  await playing;
  out.stateAtEnd = await card.getAttribute('data-state');
  return out;
}

// hls.js on a page of the server's origin, on the bundle's master playlist.
async function hlsJs(context, go) {
  const page = await context.newPage();
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  const HLS_JS_URL = config.base + '/test-only/hls.min.js';
  await page.route(HLS_JS_URL, (route) => route.fulfill({ path: config.hlsjs, contentType: 'text/javascript' }));
  await page.goto(config.base + '/');
  await page.addScriptTag({ url: HLS_JS_URL });
  await page.evaluate(WATCH);
  const errors = await page.evaluate(async (id) => {
    const video = document.createElement('video');
    video.id = 'hlsjs';
    video.muted = true;
    document.querySelector('main').prepend(video);
    window.watch(video);
    const hls = new Hls({ enableWorker: false });
    window.errors = [];
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) window.errors.push(data.type + ': ' + data.details); });
    hls.attachMedia(video);
    hls.loadSource('/asset/' + id + '/master.m3u8');
    video.play().catch(() => {});
    return window.errors;
  }, config.id);
  const out = await measure(page, '#hlsjs', go, { errors });
  out.errors = await page.evaluate(() => window.errors);
  await page.close();
  return out;
}

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url)) return route.continue();
    report.offLoopback.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  const started = Date.now();
  page.on('request', (r) => report.requests.push({ path: new URL(r.url()).pathname, at: Date.now() - started }));
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  // The browser is up (the page itself is opened after the go-ahead, when the asset is in the store).
  await page.goto('about:blank');
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  const go = Date.now();

  const [native, hlsjs] = await Promise.all([nativePlayer(page, go), hlsJs(context, go)]);
  report.native = native;
  report.hlsjs = hlsjs;
} catch (e) {
  report.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  // Written, then the process ends (standard input, read once, would keep it waiting).
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0));
}
