// The page of `stowage serve`: a player per asset, and live progress of assets being downloaded.
//
// The browser's own HLS player plays the asset (Safari, and Chromium since it plays HLS by itself). Such a
// player offers no choice of audio or subtitles, so the server gives a master playlist per audio choice
// (`master.m3u8?audio=ID`) and each subtitle rendition as one WebVTT file for a <track> element.
'use strict';

const HLS_TYPE = 'application/vnd.apple.mpegurl';
const POLL_MS = 2000;

function assetUrl(id, path) {
  return '/asset/' + encodeURIComponent(id) + '/' + path;
}

// The master playlist to play: the chosen audio as the only one, or the bundle's own master.
function sourceFor(card) {
  const audio = card.querySelector('select.audio');
  const base = assetUrl(card.dataset.id, 'master.m3u8');
  return audio && audio.value ? base + '?audio=' + encodeURIComponent(audio.value) : base;
}

// Shows the chosen subtitles (or none) on the card's video.
function applySubtitles(card, video) {
  const select = card.querySelector('select.subtitles');
  const chosen = select ? select.value : '';
  for (const track of video.querySelectorAll('track')) {
    track.track.mode = track.dataset.rendition === chosen ? 'showing' : 'disabled';
  }
}

function makePlayer(card) {
  const holder = card.querySelector('.player');
  let video = holder.querySelector('video');
  if (video) return video;
  if (!document.createElement('video').canPlayType(HLS_TYPE)) {
    const message = document.createElement('p');
    message.className = 'message';
    message.textContent = 'This browser does not play HLS by itself. Open the master playlist in a player ' +
      'such as VLC or ffplay: ' + new URL(assetUrl(card.dataset.id, 'master.m3u8'), location.href);
    holder.replaceChildren(message);
    return null;
  }
  video = document.createElement('video');
  video.controls = true;
  video.preload = 'auto';
  video.playsInline = true;
  const subtitles = card.querySelector('select.subtitles');
  if (subtitles) {
    for (const option of subtitles.options) {
      if (!option.value) continue;
      const track = document.createElement('track');
      track.kind = 'subtitles';
      track.label = option.textContent;
      track.src = assetUrl(card.dataset.id, encodeURIComponent(option.value) + '/subtitles.vtt');
      if (option.dataset.language) track.srclang = option.dataset.language;
      track.dataset.rendition = option.value;
      video.append(track);
    }
  }
  holder.replaceChildren(video);
  return video;
}

// A player joins a playlist without an end as it joins a live stream: some distance from its end. Chromium
// (156, measured) refuses one shorter than three segments, as the HLS specification's three target
// durations suggest. So an asset still downloading is started once every playlist the player is to read
// has ended or holds that much.
const PLAYLIST_MIN_SEGMENTS = 3;

async function playlistReady(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) return false;
  const text = await response.text();
  if (/^#EXT-X-ENDLIST\s*$/m.test(text)) return true;
  const target = Number((text.match(/^#EXT-X-TARGETDURATION:(\d+)/m) || [])[1] || 0);
  const durations = [...text.matchAll(/^#EXTINF:([\d.]+)/gm)].map((m) => Number(m[1]));
  const total = durations.reduce((a, b) => a + b, 0);
  return durations.length >= PLAYLIST_MIN_SEGMENTS && total >= PLAYLIST_MIN_SEGMENTS * target;
}

// Whether the master playlist at `source` can be played now: its variants' playlists and its default
// audio's are ready.
async function masterReady(source) {
  const response = await fetch(source, { cache: 'no-store' });
  if (!response.ok) return false;
  const text = await response.text();
  const base = new URL(source, location.href);
  const urls = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.startsWith('#EXT-X-STREAM-INF')) {
      const next = (lines[i + 1] || '').trim();
      if (next && !next.startsWith('#')) urls.push(new URL(next, base));
    } else if (line.startsWith('#EXT-X-MEDIA:') && /TYPE=AUDIO/.test(line) && /DEFAULT=YES/.test(line)) {
      const uri = line.match(/URI="([^"]*)"/);
      if (uri) urls.push(new URL(uri[1], base));
    }
  }
  if (urls.length === 0) return false;
  const ready = await Promise.all(urls.map((u) => playlistReady(u.href)));
  return ready.every(Boolean);
}

// Sets the card's video playing `source`, waiting while the asset is too short yet to be played.
async function start(card, video, source) {
  const holder = card.querySelector('.player');
  let note = holder.querySelector('.waiting');
  while (card.dataset.state !== 'complete' && video.dataset.source === source) {
    let ready = false;
    try {
      ready = await masterReady(source);
    } catch (e) {
      // The server may be restarting: asked again below.
    }
    if (ready) break;
    if (!note) {
      note = document.createElement('p');
      note.className = 'waiting';
      note.textContent = 'Playback starts when the first segments are stored\u2026';
      holder.append(note);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  if (note) note.remove();
  if (video.dataset.source !== source) return;
  video.src = source;
  applySubtitles(card, video);
  video.play().catch(() => {
    // Autoplay may be refused until the person interacts; the controls are there.
  });
}

function play(card) {
  const video = makePlayer(card);
  if (!video) return;
  const source = sourceFor(card);
  if (card.dataset.state === 'downloading' && video.dataset.source !== source) {
    video.dataset.source = source;
    start(card, video, source);
    return;
  }
  if (video.dataset.source !== source) {
    video.dataset.source = source;
    video.src = source;
  }
  applySubtitles(card, video);
  video.play().catch(() => {
    // Autoplay may be refused until the person interacts; the controls are there.
  });
}

// Another audio choice: the same place, the same state (playing or paused).
function switchAudio(card) {
  const video = card.querySelector('.player video');
  if (!video || !video.dataset.source) return;
  const at = video.currentTime;
  const paused = video.paused;
  const source = sourceFor(card);
  video.dataset.source = source;
  video.addEventListener('loadedmetadata', () => {
    video.currentTime = at;
    applySubtitles(card, video);
    if (!paused) video.play().catch(() => {});
  }, { once: true });
  video.src = source;
}

function wire(card) {
  card.querySelector('button.play').addEventListener('click', () => play(card));
  const audio = card.querySelector('select.audio');
  if (audio) audio.addEventListener('change', () => switchAudio(card));
  const subtitles = card.querySelector('select.subtitles');
  if (subtitles) {
    subtitles.addEventListener('change', () => {
      const video = card.querySelector('.player video');
      if (video) applySubtitles(card, video);
    });
  }
}

// Brings a card's state and progress up to date with what the server says.
function update(card, asset) {
  card.dataset.state = asset.state;
  const badge = card.querySelector('.badge');
  badge.className = 'badge ' + asset.state;
  badge.textContent = asset.state;
  const progress = card.querySelector('progress');
  const detail = card.querySelector('.detail');
  progress.max = Math.max(asset.segments_total, 1);
  progress.value = Math.min(asset.segments_finished, asset.segments_total);
  detail.textContent = asset.progress_text;
  const complete = asset.state === 'complete';
  progress.hidden = complete;
  detail.hidden = complete;
  card.querySelector('.size').textContent = asset.size_on_disk_text;
}

function changing() {
  return document.querySelector('.asset[data-state="downloading"], .asset[data-state="suspended"]') !== null;
}

async function poll(always) {
  if (!always && !changing()) return;
  try {
    const response = await fetch('/api/assets', { cache: 'no-store' });
    if (!response.ok) return;
    const store = await response.json();
    // The sizes grow while assets download: the summary line follows them.
    document.querySelector('header .summary').textContent = store.summary;
    const cards = new Map([...document.querySelectorAll('.asset')].map((c) => [c.dataset.id, c]));
    for (const asset of store.assets) {
      const card = cards.get(asset.id);
      if (card) update(card, asset);
    }
    const ids = store.assets.map((a) => a.id);
    if (ids.length !== cards.size || ids.some((id) => !cards.has(id))) {
      const notice = document.getElementById('notice');
      notice.textContent = 'Assets were added or removed: reload the page to see them.';
      notice.hidden = false;
    }
  } catch (e) {
    // The server may be restarting; the next poll tries again.
  }
}

// The download API: managing downloads from the page needs the token `stowage serve` printed, handed to
// the page in the address's fragment (`/#token=...`, which the browser never sends to the server) and kept
// for the tab only. Without it the page only plays.
function apiToken() {
  const match = location.hash.match(/^#token=([0-9a-f]+)$/);
  if (match) {
    sessionStorage.setItem('stowage-token', match[1]);
    // The token leaves the address bar, so that it is neither bookmarked nor shown.
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem('stowage-token');
}

function say(message) {
  const notice = document.getElementById('notice');
  notice.textContent = message;
  notice.hidden = false;
}

// A request of the download API; its JSON answer, if any. Fails with the server's reason.
async function api(token, method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let reason = response.status + ' ' + response.statusText;
    try {
      reason = (await response.json()).error || reason;
    } catch (e) {
      // Not JSON: the status says it.
    }
    throw new Error(reason);
  }
  return response.status === 201 ? response.json() : null;
}

function button(label, className, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

// Suspend, resume and remove buttons on a card. Removing asks for a second click.
function manage(card, token) {
  const id = card.dataset.id;
  const path = (action) => '/api/downloads/' + encodeURIComponent(id) + '/' + action;
  const act = (action) => async () => {
    try {
      await api(token, 'POST', path(action));
      say((action === 'suspend' ? 'Suspended ' : 'Resumed ') + id + '.');
      card.dataset.state = action === 'suspend' ? 'suspended' : 'downloading';
      poll();
    } catch (e) {
      say('Could not ' + action + ' ' + id + ': ' + e.message);
    }
  };
  const remove = button('Remove', 'remove', async () => {
    if (remove.dataset.armed !== 'yes') {
      remove.dataset.armed = 'yes';
      remove.textContent = 'Remove for good';
      return;
    }
    try {
      await api(token, 'DELETE', '/api/assets/' + encodeURIComponent(id));
      card.remove();
      say('Removed ' + id + '.');
    } catch (e) {
      say('Could not remove ' + id + ': ' + e.message);
    }
  });
  card.querySelector('.controls').append(
    button('Suspend', 'suspend', act('suspend')),
    button('Resume', 'resume', act('resume')),
    remove,
  );
}

// A field for a playlist URL and a name, and a button that starts the download.
function downloadForm(token) {
  const form = document.createElement('div');
  form.className = 'download';
  const url = document.createElement('input');
  url.type = 'url';
  url.placeholder = 'https://example.com/master.m3u8';
  url.setAttribute('aria-label', 'Playlist URL');
  const name = document.createElement('input');
  name.type = 'text';
  name.placeholder = 'name (optional)';
  name.setAttribute('aria-label', 'Name in the store');
  const start = button('Download', 'start', async () => {
    try {
      const body = { url: url.value.trim() };
      if (name.value.trim()) body.name = name.value.trim();
      const started = await api(token, 'POST', '/api/downloads', body);
      say('Downloading ' + started.asset + ': reload the page to see it.');
    } catch (e) {
      say('Could not start the download: ' + e.message);
    }
  });
  form.append(url, name, start);
  document.querySelector('header').append(form);
}

// Follows the downloads' events: a card whose download moved is brought up to date at once.
function follow() {
  const source = new EventSource('/api/events');
  source.addEventListener('message', (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    const card = document.getElementById('asset-' + event.asset);
    if (!card) return;
    if (event.event === 'finished' || event.event === 'failed' || event.event === 'cancelled') poll(true);
    else if (card.dataset.state !== 'downloading' && event.event === 'progress') {
      card.dataset.state = 'downloading';
    }
  });
}

document.querySelectorAll('.asset').forEach(wire);
setInterval(poll, POLL_MS);
// A token pasted into the address of the page already open is taken up as the page loads again.
window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#token=')) location.reload();
});
const token = apiToken();
if (token) {
  downloadForm(token);
  document.querySelectorAll('.asset').forEach((card) => manage(card, token));
  follow();
}
