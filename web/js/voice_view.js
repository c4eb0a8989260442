// The voice channel view (join button, video stage, participants with a speaking ring, controls,
// connection quality, errors), the same call docked above a text channel's messages, and the small
// "voice connected" panel in the sidebar. Elements are built once per session and updated in place,
// so videos keep playing and focus stays put.

import { $, avatar, h, icon, toast } from './dom.js';
import { prefs } from './devices.js';
import { channel, guild, state, username } from './state.js';
import { VoiceError, VoiceSession } from './voice.js';
import { MODE_WORDS, deviceForm, preview } from './voice_devices.js';

/** The call to rejoin after a reload (this tab only). */
const CALL_KEY = 'confab.call';
/** Fresh joins tried in a row after the connection is lost, before giving up. */
const REJOINS = 5; // 1 + 2 + … + 5 s: outlasts a cluster noticing a dead voice node (5 s)

let session = null;
let error = null; // {channelId, message} of the last failed or ended call
let ui = null; // elements of the current session's view
let nav = null;
let dockCollapsed = null; // the user's choice for the dock; null: collapsed at phone width only
const phone = matchMedia('(max-width: 700px)');

export const voiceSession = () => session;

/** `actions`: {showChannel(id)}, to open the call's channel from the dock. */
export function initVoiceView(actions) {
  nav = actions;
  phone.addEventListener('change', () => update());
  // Push-to-talk: the chosen key, held, anywhere but in a text field.
  const ptt = (held) => (e) => {
    if (!session || !prefs().ptt || e.code !== prefs().pttKey || e.repeat) return;
    if (held && e.target.closest?.('input, textarea, [contenteditable=true]')) return;
    session.pushToTalk(held);
  };
  addEventListener('keydown', ptt(true));
  addEventListener('keyup', ptt(false));
  addEventListener('blur', () => session?.pushToTalk(false));
}

/** After READY: back into the call this tab was in before a reload. */
export function resumeCall() {
  const id = sessionStorage.getItem(CALL_KEY);
  if (!id || session) return;
  const c = [...state.guilds.values()].flatMap((g) => g.channels).find((x) => x.id === id && x.kind === 'voice');
  if (c) join(c);
  else sessionStorage.removeItem(CALL_KEY);
}

/** Docks the call above the current text channel's messages (as Discord does), or hides the dock.
 *  It holds the voice view's own elements, moved: the video plays on, nothing is drawn twice. */
export function showDock() {
  const dock = $('call-dock');
  dock.hidden = !session || channel()?.kind !== 'text';
  if (dock.hidden) return;
  if (!ui.dock.body.contains(ui.root)) ui.dock.body.replaceChildren(ui.root);
  update();
}

/** Shows the current voice channel in the main area. */
export function showVoice() {
  const c = channel();
  $('channel-title').replaceChildren(icon('speaker', 18), ` ${c.name}`);
  const root = $('voice');
  if (session && session.channel.id === c.id) {
    if (!root.contains(ui.root)) root.replaceChildren(ui.root);
    return update();
  }
  const failed = error?.channelId === c.id ? error.message : null;
  const inside = [...(guild(c.guild_id)?.voice.values() ?? [])].filter((v) => v.channel_id === c.id);
  const look = preview();
  root.replaceChildren(...[
    failed ? h('p', { class: 'notice', role: 'alert', id: 'voice-error', tabindex: '-1' }, failed) : null,
    h('p', {}, session ? `You are in the voice channel ${session.channel.name}. Joining here leaves it.`
      : 'Join to talk. Your browser will ask for your microphone and camera now, not before.'),
    h('p', { id: 'voice-inside' }, inside.length
      ? `In the channel: ${inside.map((v) => username(v.user_id, c.guild_id)).join(', ')}` : 'Nobody is here yet.'),
    h('p', { class: 'muted', id: 'voice-mode' }, MODE_WORDS[c.voice_mode ?? 'hybrid'] ?? ''),
    look,
    h('div', { class: 'controls' }, h('button', { id: 'voice-join', class: 'primary', onclick: () => { look.stop(); join(c); } }, 'Join voice')),
  ].filter(Boolean));
}

async function join(c, attempt = 0) {
  session?.leave();
  error = null;
  sessionStorage.setItem(CALL_KEY, c.id);
  const s = new VoiceSession(c);
  if (attempt) s.notice = 'Reconnecting…';
  session = s;
  ui = build(s);
  s.addEventListener('change', () => { if (s === session) update(); });
  s.addEventListener('ended', (e) => {
    if (s !== session) return;
    session = null;
    ui = null;
    // Lost (not refused): join afresh, which replaces the old session on the server: no ghost.
    if (s.rejoin && attempt < REJOINS) {
      $('voice-panel').hidden = true;
      setTimeout(() => { if (!session) join(c, attempt + 1); }, 1000 * (attempt + 1));
      return;
    }
    sessionStorage.removeItem(CALL_KEY);
    if (e.detail) error = { channelId: c.id, message: e.detail };
    $('voice-panel').hidden = true;
    const dock = $('call-dock');
    const focused = dock.contains(document.activeElement);
    dock.hidden = true;
    dock.replaceChildren();
    if (state.channelId === c.id) {
      showVoice();
      if (e.detail) $('voice-error')?.focus();
    } else {
      if (e.detail) toast(e.detail, 10000); // the voice view, which would show it, is not on screen
      if (focused) $('composer-input').focus(); // left from the dock: back to the conversation
    }
  });
  // The Join button is replaced by the call's controls: focus goes to Mute, not to the page.
  const hadFocus = document.activeElement === document.body || $('voice').contains(document.activeElement);
  if (state.channelId === c.id) {
    showVoice();
    if (hadFocus && !attempt) ui.mute.focus();
  } else {
    showDock(); // rejoined (after a reload) while another channel is on screen
  }
  try {
    await s.join();
  } catch (e) {
    s.end(e instanceof VoiceError ? e.message : `Could not join: ${e.message}`);
  }
}

function build(s) {
  const btn = (id, onclick) => h('button', { id, type: 'button', onclick });
  const r = {
    notice: h('p', { class: 'notice info', role: 'status', id: 'voice-notice', hidden: true }),
    stage: h('div', { class: 'stage', id: 'voice-stage', 'aria-label': 'Video' }),
    screens: h('div', { class: 'screens', id: 'voice-screens', 'aria-label': 'Screen shares' }),
    shares: new Map(), // mid → share card
    people: h('ul', { class: 'people', id: 'voice-people', 'aria-label': 'In this call' }),
    mute: btn('voice-mute', () => s.toggleMute()),
    deafen: btn('voice-deafen', () => s.toggleDeaf()),
    share: btn('voice-share', () => s.toggleShare()),
    settings: h('details', { class: 'voice-settings', id: 'voice-settings' }, h('summary', {}, 'Voice settings')),
    camera: btn('voice-camera', () => s.toggleCamera()),
    leave: h('button', { id: 'voice-leave', type: 'button', class: 'danger', onclick: () => s.leave() }, 'Leave'),
    quality: h('p', { class: 'quality', id: 'voice-quality', 'aria-live': 'off' }),
    videos: new Map(), // mid → tile
    panel: {
      title: h('b', {}),
      quality: h('span', { class: 'quality' }),
      mute: btn('panel-mute', () => s.toggleMute()),
      leave: h('button', { type: 'button', class: 'danger small', onclick: () => s.leave() }, 'Leave'),
    },
  };
  r.root = h('div', { class: 'voice-call' }, r.notice, r.screens, r.stage, r.people,
    h('div', { class: 'controls' }, r.mute, r.deafen, r.camera, r.share, r.leave), r.settings, r.quality);
  // The pickers are built when opened (device names may only be known once the call has them).
  r.settings.addEventListener('toggle', async () => {
    if (r.settings.open && !r.settings.querySelector('.device-form')) r.settings.append(await deviceForm(s));
  });
  r.panel.mute.className = 'small';
  $('voice-panel').replaceChildren(h('span', { class: 'muted' }, 'Voice: ', r.panel.title), r.panel.quality,
    h('div', { class: 'row' }, r.panel.mute, r.panel.leave));
  $('voice-panel').hidden = false;
  // The dock: a bar (collapse, the call's channel, quality) over the voice view's elements.
  r.dock = {
    toggle: h('button', {
      id: 'dock-toggle', type: 'button', class: 'icon', 'aria-controls': 'call-dock-body', 'aria-label': 'Call video',
      onclick: () => { dockCollapsed = !(dockCollapsed ?? phone.matches); update(); },
    }, icon('chevron', 20)),
    title: h('button', { id: 'dock-open', type: 'button', class: 'link', title: 'Open the voice channel', onclick: () => nav?.showChannel(s.channel.id) }),
    quality: h('span', { class: 'quality' }),
    body: h('div', { id: 'call-dock-body', class: 'dock-body' }),
  };
  $('call-dock').replaceChildren(h('div', { class: 'dock-bar' }, r.dock.toggle, icon('speaker'), r.dock.title, r.dock.quality), r.dock.body);
  return r;
}

function update() {
  const s = session;
  if (!s || !ui) return;
  const status = s.status === 'connected' ? '' : s.status === 'starting' ? 'Waiting for microphone permission…' : 'Connecting…';
  ui.notice.textContent = s.notice ?? status;
  ui.notice.hidden = !ui.notice.textContent;
  // Labels say what a click does; aria-pressed carries the state (red when it is "off").
  for (const b of [ui.mute, ui.panel.mute]) {
    b.textContent = s.selfMute ? 'Unmute' : 'Mute';
    b.setAttribute('aria-pressed', String(s.selfMute));
    b.classList.toggle('off', s.selfMute);
  }
  ui.deafen.textContent = s.selfDeaf ? 'Undeafen' : 'Deafen';
  ui.share.textContent = s.sharing ? 'Stop sharing' : 'Share screen';
  ui.share.setAttribute('aria-pressed', String(s.sharing));
  ui.share.hidden = !s.shareTransceiver && s.status === 'connected';
  ui.deafen.setAttribute('aria-pressed', String(s.selfDeaf));
  ui.deafen.classList.toggle('off', s.selfDeaf);
  ui.mute.title = prefs().ptt && !s.selfMute ? `Push to talk: hold ${prefs().pttKey}${s.talking ? ' (talking)' : ''}` : '';
  const hasCam = (s.local?.getVideoTracks().length ?? 0) > 0;
  ui.camera.textContent = 'Camera';
  ui.camera.disabled = !hasCam;
  ui.camera.title = hasCam ? '' : 'No camera in this call';
  ui.camera.setAttribute('aria-pressed', String(s.camera));
  ui.camera.classList.toggle('off', hasCam && !s.camera);
  ui.panel.title.textContent = s.channel.name;
  const collapsed = dockCollapsed ?? phone.matches;
  $('call-dock').classList.toggle('collapsed', collapsed);
  $('call-dock').setAttribute('aria-label', `Voice call: ${s.channel.name}`);
  ui.dock.toggle.setAttribute('aria-expanded', String(!collapsed));
  ui.dock.toggle.title = collapsed ? 'Show the call’s video' : 'Collapse the call to a bar';
  ui.dock.title.textContent = s.channel.name;
  const q = s.quality;
  const text = q ? `${q.level} · RTT ${q.rtt == null ? '–' : `${Math.round(q.rtt)} ms`} · loss ${q.loss.toFixed(1)}%` : '';
  for (const el of [ui.quality, ui.panel.quality, ui.dock.quality]) {
    el.replaceChildren(q ? h('span', { class: q.level }, '●') : '', h('span', { class: 'quality-text' }, ` ${text}`));
    el.title = 'Connection quality (from getStats)';
  }
  updateStage(s);
  updatePeople(s);
}

function updateStage(s) {
  // The server composites only while a camera is on; without one the last frame would freeze.
  const anyCamera = [...s.participants.values()].some((p) => p.camera);
  updateScreens(s);
  for (const r of s.receivers.filter((r) => r.kind === 'video' && r.active && !r.share)) {
    let tile = ui.videos.get(r.mid);
    if (!tile) {
      const video = h('video', { autoplay: true, playsinline: true, muted: true, 'data-mid': r.mid });
      video.srcObject = r.stream;
      tile = h('div', { class: 'tile' }, video, h('span', { class: 'label' }));
      ui.videos.set(r.mid, tile);
      ui.stage.append(tile);
    }
    // A video taken out of the page (while another channel was shown) was paused by the browser.
    const video = tile.querySelector('video');
    if (video.paused && ui.root.isConnected) video.play().catch(() => {});
    // Composite (hybrid, mcu): one stream of everyone. sfu: one camera per slot, named by `slots`.
    const user = s.slots.get(r.mid)?.user_id ?? null;
    const composite = s.mode !== 'sfu';
    tile.hidden = composite ? !anyCamera : !user;
    tile.querySelector('.label').textContent = composite ? 'Everyone' : s.participants.get(user)?.username ?? '';
    const p = s.participants.get(user);
    tile.classList.toggle('speaking', !composite && !!p?.speaking && !p.self_mute && !p.server_mute);
    tile.setAttribute('aria-label', composite ? 'Video of everyone in the call' : `Camera of ${s.participants.get(user)?.username ?? 'nobody'}`);
  }
}

/** Others' screen shares: a "LIVE" card to choose to watch, then the share large, at its own
 *  resolution (never a composite tile). */
function updateScreens(s) {
  for (const r of s.receivers.filter((r) => r.share && r.active)) {
    let card = ui.shares.get(r.mid);
    if (!card) {
      const video = h('video', { autoplay: true, playsinline: true, muted: true, 'data-mid': r.mid, class: 'share-video' });
      video.srcObject = r.stream;
      card = {
        root: h('div', { class: 'share', 'data-mid': r.mid }),
        video,
        label: h('span', { class: 'label' }),
        button: h('button', { type: 'button', class: 'small' }),
      };
      card.root.append(h('div', { class: 'share-bar' }, h('span', { class: 'live' }, 'LIVE'), card.label, card.button), video);
      ui.shares.set(r.mid, card);
      ui.screens.append(card.root);
    }
    const user = s.slots.get(r.mid)?.user_id ?? null;
    const p = s.participants.get(user);
    const watching = !!user && s.watching.has(user);
    card.root.hidden = !user;
    card.root.dataset.user = user ?? '';
    card.root.classList.toggle('watching', watching);
    card.label.textContent = p ? ` ${p.username} is sharing their screen` : '';
    card.button.textContent = watching ? 'Stop watching' : 'Watch';
    card.button.onclick = () => s.watch(user, !watching);
    card.video.hidden = !watching;
    if (watching && card.video.paused && ui.root.isConnected) card.video.play().catch(() => {});
  }
}

function updatePeople(s) {
  const volumes = prefs().volumes;
  // Each voice reaches this page on its own except in a mixed (mcu) room: only there no per-person volume.
  const own = s.mode !== 'mcu';
  const keep = document.activeElement?.closest?.('#voice-people input[type=range]')?.dataset.user;
  if (keep) return; // do not rebuild under a slider being dragged
  const items = [...s.participants.values()].map((p) => {
    const muted = p.self_mute || p.server_mute;
    // No ring on the muted: nobody hears them, whatever their last speaking state was.
    const speaking = p.speaking && !muted;
    return h('li', {
      class: `person${speaking ? ' speaking' : ''}`, 'data-user': p.user_id,
      'aria-label': `${p.username}${p.user_id === s.userId ? ' (you)' : ''}${speaking ? ', speaking' : ''}${muted ? ', muted' : ''}${p.self_deaf ? ', deafened' : ''}${p.share ? ', sharing their screen' : ''}${p.camera ? ', camera on' : ''}`,
    }, avatar(p.user_id, p.username), h('span', {}, p.username),
    h('span', { class: 'states' }, muted ? icon('micOff', 14) : null, p.self_deaf ? icon('deaf', 14) : null,
      p.share ? h('span', { class: 'live', title: 'Sharing their screen' }, 'LIVE') : null,
p.camera ? icon('camera', 14) : null),
    own && p.user_id !== s.userId ? h('input', {
      type: 'range', min: 0, max: 100, value: Math.round(100 * (volumes[p.user_id] ?? 1)), class: 'volume', 'data-user': p.user_id,
      'aria-label': `Volume of ${p.username}`, title: `Volume of ${p.username}`,
      onchange: (e) => s.setVolume(p.user_id, e.target.value / 100),
    }) : null);
  });
  ui.people.replaceChildren(...items);
}
