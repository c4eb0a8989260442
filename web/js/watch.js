// A live channel's watch page, beside its chat: the player (LL-HLS, player.js), the stream's state
// (live, offline, ended; uptime; viewers, live from STREAM_UPDATE), its title and a quality menu.
// The guild owner also gets the stream settings: title, public, the ingest URLs, the stream key
// (hidden until asked, copy, rotate) and "Go live from the browser" (WHIP, golive.js).

import { get, patch, post } from './api.js';
import { ask } from './dialog.js';
import { $, h, toast } from './dom.js';
import { goLive } from './golive.js';
import { LivePlayer, WhepPlayer } from './player.js';
import { channel, guild, on, state } from './state.js';

/** {channelId, player, stream: last state} of the page shown. */
let view = null;
let publishing = null;
let clock = null;
const keyStore = (id) => `confab.streamkey.${id}`;

export function initWatch() {
  on('stream', (id) => { if (view?.channelId === id) update(state.streams.get(id)); });
}

/** Opens the selected live channel's page. */
export async function showWatch() {
  const id = state.channelId;
  hideWatch();
  view = { channelId: id, player: null, stream: null };
  render(id);
  try {
    const s = await get(`/channels/${id}/stream`);
    if (view?.channelId !== id) return;
    view.token = s.watch_token;
    update(s);
  } catch (e) { toast(e.message); }
}

/** Leaves the page: the player stops (and stops counting as a viewer). */
export function hideWatch() {
  view?.player?.stop();
  view = null;
  clearInterval(clock);
}

function render(id) {
  const c = channel(id);
  const owner = guild(c.guild_id)?.guild.owner_id === state.me.id;
  const video = h('video', { id: 'live-video', playsinline: true, controls: true, 'aria-label': 'Live stream' });
  const quality = h('select', { id: 'live-quality', 'aria-label': 'Quality', onchange: (e) => view?.player?.setLevel(Number(e.target.value)) },
    h('option', { value: '-1' }, 'Auto'));
  $('watch').replaceChildren(
    h('div', { class: 'player-box' }, video, h('p', { id: 'live-overlay', class: 'overlay' }, 'Offline')),
    h('div', { class: 'live-bar' },
      h('span', { id: 'live-badge', class: 'live-badge' }, 'OFFLINE'),
      h('strong', { id: 'live-title', class: 'live-title' }, c.name),
      h('span', { id: 'live-uptime', class: 'muted' }),
      h('span', { id: 'live-viewers', class: 'muted', 'aria-live': 'polite' }),
      h('label', { class: 'quality' }, 'Quality ', quality),
      h('label', { title: 'WebRTC: under a second behind, for streams published from a browser or OBS by WHIP' },
        h('input', { type: 'checkbox', id: 'live-lowlatency', onchange: switchMode }), ' Low latency'),
      owner ? null : h('button', { type: 'button', id: 'live-report', class: 'small', onclick: () => reportStream(id) }, 'Report stream')),
    owner ? ownerPanel(id) : null);
}

function ownerPanel(id) {
  const saved = JSON.parse(localStorage.getItem(keyStore(id)) ?? 'null');
  const key = h('input', { id: 'live-key', type: 'password', readonly: true, value: saved?.key ?? '', placeholder: 'No key yet: rotate to make one', 'aria-label': 'Stream key' });
  const title = h('input', { id: 'live-title-input', maxlength: 140, placeholder: 'Stream title', 'aria-label': 'Stream title' });
  const pub = h('input', { id: 'live-public', type: 'checkbox' });
  const status = h('p', { id: 'live-publish-state', class: 'muted', role: 'status' });
  const rtmp = h('code', { id: 'live-rtmp' }, saved?.rtmp_url ? saved.rtmp_url.replace(/\/[^/]*$/, '') : 'rotate the key to see it');
  return h('details', { id: 'live-owner', class: 'live-owner' },
    h('summary', {}, 'Stream settings'),
    h('form', { class: 'row', onsubmit: async (e) => {
      e.preventDefault();
      try { await patch(`/channels/${id}/stream`, { title: title.value, public: pub.checked }); toast('Saved'); } catch (err) { toast(err.message); }
    } }, title, h('label', {}, pub, ' Public (anyone can watch)'), h('button', { type: 'submit' }, 'Save')),
    h('p', {}, 'RTMP (OBS, ffmpeg): ', rtmp, ' with the key as stream key'),
    h('p', {}, 'WHIP (OBS 30+): ', h('code', {}, `${location.origin}/whip/${id}`), ' with the key as bearer token'),
    h('div', { class: 'row' }, h('label', { for: 'live-key' }, 'Stream key'), key,
      h('button', { type: 'button', id: 'live-key-show', onclick: () => { key.type = key.type === 'password' ? 'text' : 'password'; } }, 'Show'),
      h('button', { type: 'button', id: 'live-key-copy', onclick: () => navigator.clipboard?.writeText(key.value).then(() => toast('Copied'), () => toast('Copy failed')) }, 'Copy'),
      h('button', { type: 'button', id: 'live-key-rotate', onclick: async () => {
        try {
          const k = await post(`/channels/${id}/stream-key`);
          localStorage.setItem(keyStore(id), JSON.stringify(k));
          key.value = k.stream_key;
          if (k.rtmp_url) rtmp.textContent = k.rtmp_url.replace(/\/[^/]*$/, '');
          toast('New key: the old one no longer publishes');
        } catch (e) { toast(e.message); }
      } }, 'Rotate')),
    h('div', { class: 'row' },
      h('button', { type: 'button', id: 'live-go', class: 'primary', onclick: () => publish(id, key, false) }, 'Go live from the browser'),
      h('button', { type: 'button', id: 'live-screen', onclick: () => publish(id, key, true) }, 'Share screen'),
      h('button', { type: 'button', id: 'live-stop', onclick: stopPublishing }, 'Stop')),
    status);
}

async function reportStream(id) {
  const reason = await ask({ title: 'Report stream', label: 'Why report this stream?', ok: 'Report', max: 500 });
  if (!reason) return;
  try {
    await post(`/channels/${id}/stream/reports`, { reason });
    toast('Reported to the server owner');
  } catch (e) { toast(e.message); }
}

async function publish(id, keyInput, screen) {
  if (publishing) return toast('Already live from this browser');
  if (!keyInput.value) {
    const k = await post(`/channels/${id}/stream-key`).catch((e) => { toast(e.message); return null; });
    if (!k) return;
    localStorage.setItem(keyStore(id), JSON.stringify(k));
    keyInput.value = k.stream_key;
  }
  try {
    $('live-publish-state').textContent = 'Connecting…';
    publishing = await goLive(id, keyInput.value, { screen });
    $('live-publish-state').textContent = screen ? 'Live: sharing the screen' : 'Live: camera and microphone';
  } catch (e) {
    $('live-publish-state').textContent = '';
    toast(`Could not go live: ${e.message}`);
  }
}

async function stopPublishing() {
  const p = publishing;
  publishing = null;
  await p?.stop();
  if ($('live-publish-state')) $('live-publish-state').textContent = '';
}

const since = (ms) => {
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return (hms[0] ? `${hms[0]}:` : '') + hms.slice(1).map((n) => String(n).padStart(2, '0')).join(':');
};

/** A new stream state (from the API or STREAM_UPDATE). */
async function update(s) {
  if (!s || !view) return;
  const was = view.stream?.state;
  view.stream = { ...view.stream, ...s };
  const { state: phase, title, viewer_count: viewers, started_at: started } = view.stream;
  $('live-badge').textContent = { live: 'LIVE', ended: 'ENDED', idle: 'OFFLINE' }[phase] ?? 'OFFLINE';
  $('live-badge').classList.toggle('on', phase === 'live');
  $('live-title').textContent = title || channel(view.channelId)?.name || '';
  $('live-viewers').textContent = phase === 'live' ? `${viewers ?? 0} watching` : '';
  const titleInput = $('live-title-input');
  if (titleInput && document.activeElement !== titleInput) titleInput.value = title ?? '';
  if ($('live-public')) $('live-public').checked = !!view.stream.public;
  clearInterval(clock);
  if (phase === 'live' && started) {
    const tick = () => { if ($('live-uptime')) $('live-uptime').textContent = `live for ${since(started)}`; };
    tick();
    clock = setInterval(tick, 1000);
  } else $('live-uptime').textContent = '';
  $('live-overlay').textContent = phase === 'ended' ? 'The stream has ended' : phase === 'live' ? '' : 'Offline: nothing is streaming';
  $('live-overlay').hidden = phase === 'live';
  // One player per stream (by its start): one that failed is not restarted in a loop.
  if (phase === 'live' && !view.player && view.startedFor !== started) {
    view.startedFor = started;
    if (was !== 'live' || !view.token) {
      // A fresh token: one from an hour ago may lapse during the stream.
      const fresh = await get(`/channels/${view.channelId}/stream`).catch(() => null);
      if (!view || !fresh) return;
      view.token = fresh.watch_token;
    }
    startPlayer();
  }
  if (phase !== 'live' && view.player) {
    view.player.stop(true);
    view.player = null;
  }
}

/** HLS ⇄ WebRTC: the player restarts in the other mode. */
function switchMode() {
  if (!view || view.stream?.state !== 'live') return;
  view.player?.stop();
  view.player = null;
  startPlayer();
}

function startPlayer() {
  const low = $('live-lowlatency')?.checked;
  const player = new (low ? WhepPlayer : LivePlayer)($('live-video'), view.channelId, view.token);
  view.player = player;
  player.addEventListener('levels', (e) => {
    $('live-quality').replaceChildren(h('option', { value: '-1' }, 'Auto'),
      ...e.detail.map((l) => h('option', { value: String(l.index) }, `${l.height}p`)));
  });
  player.addEventListener('ended', () => { if (view?.player === player) { view.player = null; $('live-overlay').hidden = false; $('live-overlay').textContent = 'The stream has ended'; } });
  player.addEventListener('error', (e) => {
    if (view?.player !== player) return;
    view.player = null;
    if (low) {
      // No WebRTC playback (e.g. a stream too small to be transcoded): back to HLS, saying why.
      toast(`Low latency unavailable: ${e.detail}`);
      $('live-lowlatency').checked = false;
      return startPlayer();
    }
    $('live-overlay').hidden = false;
    $('live-overlay').textContent = e.detail;
  });
  player.start();
  window.confab.player = player;
}
