// Plays bundles served by `stowage serve` in Chromium, through the page's own players (the browser's HLS
// player) and through hls.js, and measures what the Rust test (tests/browser.rs) then checks: frames
// played to the end, the tone of the audio heard before and after a switch, when a subtitle cue fires,
// where seeks land, which requests were made, and that none left loopback.
//
// Input: the JSON in STOWAGE_BROWSER_CONFIG. Output: one JSON object on standard output.
import { chromium } from 'playwright-core';

const config = JSON.parse(process.env.STOWAGE_BROWSER_CONFIG);
const HLS_JS_URL = config.base + '/test-only/hls.min.js';

const browser = await chromium.launch({
  executablePath: config.chromium,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // Sound is measured: the players start without a click of a person.
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
const report = { page: {}, native: {}, hlsjs: {}, offLoopback: [], pageErrors: [] };

// Every request the pages make passes here: loopback goes on, anything else is stopped and reported.
function isLoopback(url) {
  const u = new URL(url);
  if (u.protocol === 'data:' || u.protocol === 'blob:') return true;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
await context.route('**/*', (route) => {
  const url = route.request().url();
  if (isLoopback(url)) return route.continue();
  report.offLoopback.push(url);
  return route.abort();
});

async function newPage(requests) {
  const page = await context.newPage();
  page.on('request', (r) => requests.push({ url: r.url(), at: Date.now() }));
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
  // hls.js comes from the npm dev-dependency, served by this test at a URL of the server's origin (so that
  // the page's security policy, which allows scripts of its own origin only, lets it run).
  await page.route(HLS_JS_URL, (route) =>
    route.fulfill({ path: config.hlsjs, contentType: 'text/javascript' }));
  return page;
}

// Installed in each page: an analyser on a media element, and the loudest frequency it hears.
const ANALYSER = `
window.listen = (video) => {
  const ctx = new AudioContext();
  const source = ctx.createMediaElementSource(video);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  source.connect(analyser);
  analyser.connect(ctx.destination);
  window.tone = () => {
    const data = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(data);
    let best = 1;
    for (let i = 2; i < data.length; i++) if (data[i] > data[best]) best = i;
    return { hz: best * ctx.sampleRate / analyser.fftSize, db: data[best] };
  };
  return ctx.resume();
};
// Resolves once the element's time has passed t, or rejects after ms.
window.until = (video, t, ms) => new Promise((resolve, reject) => {
  const started = Date.now();
  const check = () => {
    if (video.currentTime >= t) return resolve(video.currentTime);
    if (video.error) return reject(new Error('media error ' + video.error.code + ' ' + video.error.message));
    if (Date.now() - started > ms) return reject(new Error('time stuck at ' + video.currentTime + ', wanted ' + t));
    setTimeout(check, 50);
  };
  check();
});
// Waits until the tone heard is near hz (the audio that was buffered before a switch plays out first).
window.hear = async (hz, ms) => {
  const started = Date.now();
  let last;
  while (Date.now() - started < ms) {
    last = window.tone();
    if (last.db > -80 && Math.abs(last.hz - hz) < 15) return { ...last, after: Date.now() - started };
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ...last, after: null };
};
window.once = (target, name, ms) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no ' + name + ' within ' + ms + ' ms')), ms);
  target.addEventListener(name, (e) => { clearTimeout(timer); resolve(e); }, { once: true });
});
`;

// The page's own player, from a click on Play to the end: frames, the first tone, a subtitle cue.
async function playThrough(asset) {
  const requests = [];
  const page = await newPage(requests);
  await page.goto(config.base + '/');
  await page.evaluate(ANALYSER);
  const card = page.locator('#asset-' + asset.id);
  if (asset.subtitles) await card.locator('select.subtitles').selectOption(asset.subtitles);
  await card.locator('button.play').click();
  const result = await page.evaluate(async ({ id, asset }) => {
    const video = document.querySelector('#asset-' + id + ' .player video');
    await window.listen(video);
    const out = {};
    const track = asset.subtitles
      ? [...video.querySelectorAll('track')].find((t) => t.dataset.rendition === asset.subtitles).track
      : null;
    window.track = track;
    const cueSeen = new Promise((resolve) => {
      if (!track) return resolve(null);
      track.addEventListener('cuechange', () => {
        for (const cue of track.activeCues) {
          if (cue.text === asset.cue.text) {
            resolve({ at: video.currentTime, start: cue.startTime, end: cue.endTime, mode: track.mode });
          }
        }
      });
    });
    window.ended = window.once(video, 'ended', (asset.duration * 2 + 30) * 1000);
    await window.until(video, 2, 20000);
    out.tone = await window.hear(asset.tones[asset.audio[0]], 4000);
    out.cue = await Promise.race([cueSeen, new Promise((r) => setTimeout(() => r(null), asset.duration * 1000 + 5000))]);
    return out;
  }, { id: asset.id, asset });
  Object.assign(result, await page.evaluate(async ({ id }) => {
    const video = document.querySelector('#asset-' + id + ' .player video');
    await window.ended;
    const q = video.getVideoPlaybackQuality();
    return {
      frames: q.totalVideoFrames,
      dropped: q.droppedVideoFrames,
      currentTime: video.currentTime,
      duration: video.duration,
      ended: video.ended,
      trackCues: window.track ? window.track.cues.length : 0,
    };
  }, { id: asset.id }));
  result.requests = requests.map((r) => new URL(r.url).pathname + new URL(r.url).search);
  await page.close();
  return result;
}

// The page's own player: an audio switch (heard, and seen in the requests), then seeks.
async function switchAndSeek(asset, screenshot) {
  const requests = [];
  const page = await newPage(requests);
  await page.goto(config.base + '/');
  await page.evaluate(ANALYSER);
  const card = page.locator('#asset-' + asset.id);
  await card.locator('button.play').click();
  const before = await page.evaluate(async ({ id, asset }) => {
    const video = document.querySelector('#asset-' + id + ' .player video');
    await window.listen(video);
    await window.until(video, 1.5, 20000);
    return { tone: await window.hear(asset.tones[asset.audio[0]], 4000), at: video.currentTime };
  }, { id: asset.id, asset });
  const switchedAt = Date.now();
  await card.locator('select.audio').selectOption(asset.audio[1]);
  const after = await page.evaluate(async ({ id, asset, from }) => {
    const video = document.querySelector('#asset-' + id + ' .player video');
    await window.once(video, 'loadedmetadata', 20000);
    const resumedAt = await window.until(video, from, 20000);
    const tone = await window.hear(asset.tones[asset.audio[1]], 8000);
    const seeks = [];
    for (const fraction of [0.5, 0.95]) {
      const target = video.duration * fraction;
      const seeked = window.once(video, 'seeked', 20000);
      video.currentTime = target;
      await seeked;
      seeks.push({ fraction, target, landed: video.currentTime });
    }
    return { tone, resumedAt, src: video.currentSrc, seeks };
  }, { id: asset.id, asset, from: before.at });
  const late = requests.filter((r) => r.at >= switchedAt).map((r) => new URL(r.url).pathname + new URL(r.url).search);
  if (screenshot && asset.subtitles) {
    // The page with the French audio and English subtitles chosen, paused on a cue.
    await card.locator('select.subtitles').selectOption(asset.subtitles);
    await page.evaluate(async ({ id, asset }) => {
      const video = document.querySelector('#asset-' + id + ' .player video');
      const track = [...video.querySelectorAll('track')].find((t) => t.dataset.rendition === asset.subtitles).track;
      video.pause();
      const seeked = window.once(video, 'seeked', 20000);
      video.currentTime = (asset.cue.start + asset.cue.end) / 2;
      await seeked;
      const started = Date.now();
      while (!(track.activeCues && track.activeCues.length) && Date.now() - started < 5000) {
        await new Promise((r) => setTimeout(r, 50));
      }
    }, { id: asset.id, asset });
    await page.waitForTimeout(300);
    await page.screenshot({ path: config.artifacts + '/page-playing.png', fullPage: true });
  }
  await page.close();
  return { before, after, requestsAfterSwitch: late };
}

// hls.js, as a web app embeds it: the tracks it lists, switching audio and subtitles.
async function withHlsJs(asset) {
  const requests = [];
  const page = await newPage(requests);
  await page.goto(config.base + '/');
  await page.addScriptTag({ url: HLS_JS_URL });
  await page.evaluate(ANALYSER);
  const result = await page.evaluate(async ({ id, asset }) => {
    const out = { supported: Hls.isSupported() };
    const video = document.createElement('video');
    document.querySelector('main').prepend(video);
    const hls = new Hls({ enableWorker: false });
    const parsed = new Promise((resolve) => hls.on(Hls.Events.MANIFEST_PARSED, resolve));
    const errors = [];
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) errors.push(data.type + ': ' + data.details); });
    hls.attachMedia(video);
    hls.loadSource('/asset/' + id + '/master.m3u8');
    await parsed;
    out.audioTracks = hls.audioTracks.map((t) => ({ name: t.name, lang: t.lang }));
    out.subtitleTracks = hls.subtitleTracks.map((t) => ({ name: t.name, lang: t.lang }));
    await window.listen(video);
    await video.play();
    await window.until(video, 1.5, 20000);
    out.toneBefore = await window.hear(asset.tones[asset.audio[0]], 4000);
    const wanted = hls.audioTracks.findIndex((t) => t.lang === asset.audioLanguages[1]);
    const switched = new Promise((resolve) => hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_, d) => resolve(d.id)));
    window.switchedAt = Date.now();
    hls.audioTrack = wanted;
    out.audioSwitchedTo = await switched;
    out.toneAfter = await window.hear(asset.tones[asset.audio[1]], 10000);
    if (asset.subtitles) {
      const index = hls.subtitleTracks.findIndex((t) => t.lang === asset.subtitleLanguage);
      hls.subtitleDisplay = true;
      const loaded = new Promise((resolve) => hls.on(Hls.Events.SUBTITLE_TRACK_LOADED, resolve));
      hls.subtitleTrack = index;
      await loaded;
      video.currentTime = 0;
      await window.until(video, asset.cue.end + 0.2, 20000);
      const cues = [...video.textTracks].flatMap((t) => (t.cues ? [...t.cues] : []));
      const cue = cues.find((c) => c.text === asset.cue.text);
      out.subtitleTrack = hls.subtitleTrack;
      out.cue = cue ? { start: cue.startTime, end: cue.endTime } : null;
    }
    out.errors = errors;
    out.switchedAt = window.switchedAt;
    hls.destroy();
    return out;
  }, { id: asset.id, asset });
  result.requestsAfterSwitch = requests
    .filter((r) => r.at >= result.switchedAt)
    .map((r) => new URL(r.url).pathname);
  await page.close();
  return result;
}

try {
  // The page as a person first sees it.
  const requests = [];
  const page = await newPage(requests);
  await page.goto(config.base + '/');
  report.page.cards = await page.locator('article.asset').count();
  report.page.states = await page.locator('article.asset').evaluateAll((cards) => cards.map((c) => [c.dataset.id, c.dataset.state]));
  report.page.titles = await page.locator('article.asset h2').allTextContents();
  report.page.screenshot = config.artifacts + '/page.png';
  await page.screenshot({ path: report.page.screenshot, fullPage: true });
  await page.close();

  // Each asset's checks, three assets side by side (each page plays at normal speed, and a machine of
  // two cores decodes six small videos at once without dropping frames).
  for (let i = 0; i < config.assets.length; i += 3) {
    await Promise.all(config.assets.slice(i, i + 3).map(async (asset) => {
      const first = asset === config.assets[0];
      const [through, switching] = await Promise.all([playThrough(asset), switchAndSeek(asset, first)]);
      report.native[asset.id] = { ...through, switching };
    }));
  }
  for (const asset of config.assets) {
    report.hlsjs[asset.id] = await withHlsJs(asset);
  }
} catch (e) {
  report.failure = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
  process.stdout.write(JSON.stringify(report) + '\n');
}
