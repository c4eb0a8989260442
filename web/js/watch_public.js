// The watch page for people without an account (`/watch/{channel_id}`): a public stream's player,
// state and viewer count, read from the API every few seconds (no gateway without a login).
// Chat needs an account: the page links to the client.

import { LivePlayer } from './player.js';

const id = location.pathname.split('/').filter(Boolean)[1];
const $ = (x) => document.getElementById(x);
let player = null;
/** The stream (its start time) a player was started for: one that failed is not retried in a loop. */
let startedFor = null;

function show(message) {
  $('live-overlay').hidden = !message;
  $('live-overlay').textContent = message ?? '';
}

async function poll() {
  let s;
  try {
    const r = await fetch(`/api/channels/${id}/stream`);
    s = await r.json();
    if (!r.ok) {
      player?.stop();
      player = null;
      return show(r.status === 401 ? 'This stream is for members: sign in to watch it.' : s.message);
    }
  } catch { return show('The server cannot be reached.'); }
  document.title = `${s.title || 'Live'} on confab`;
  $('live-title').textContent = s.title || 'Live stream';
  $('live-badge').textContent = { live: 'LIVE', ended: 'ENDED' }[s.state] ?? 'OFFLINE';
  $('live-badge').classList.toggle('on', s.state === 'live');
  $('live-viewers').textContent = s.state === 'live' ? `${s.viewer_count} watching` : '';
  $('live-uptime').textContent = s.state === 'live' && s.started_at ? `live since ${new Date(s.started_at).toLocaleTimeString()}` : '';
  if (s.state === 'live' && !player && startedFor !== s.started_at) {
    startedFor = s.started_at;
    show(null);
    player = new LivePlayer($('live-video'), id, s.watch_token);
    player.addEventListener('levels', (e) => {
      $('live-quality').replaceChildren(new Option('Auto', '-1'), ...e.detail.map((l) => new Option(`${l.height}p`, String(l.index))));
    });
    player.addEventListener('ended', () => { player = null; show('The stream has ended'); });
    player.addEventListener('error', (e) => { player = null; show(e.detail); });
    player.start();
    window.confab = { player };
  }
  if (s.state !== 'live') {
    player?.stop();
    player = null;
    show(s.state === 'ended' ? 'The stream has ended' : 'Offline: nothing is streaming');
  }
}

$('live-quality').onchange = (e) => player?.setLevel(Number(e.target.value));
addEventListener('pagehide', () => player?.stop());
poll();
setInterval(poll, 3000);
