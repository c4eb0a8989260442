// Notifications outside the tab: a desktop notification and a short sound for a mention or a DM
// (unless that channel is muted, or it is the channel on screen in a focused tab), the unread
// count in the tab's title, and per-channel mute (kept in this browser). Permission is asked for
// once, from a click on "Enable notifications", never on load.

import { $ } from './dom.js';
import { channel, dmTitle, on, state, username } from './state.js';

const MUTED = 'confab.muted';
const muted = new Set(JSON.parse(localStorage.getItem(MUTED) ?? '[]'));
let audio = null;
let open = () => {};

/** `showChannel(id)`: what clicking a notification opens. */
export function initNotify(showChannel) {
  open = showChannel;
  const ask = $('notify-enable');
  const canAsk = () => 'Notification' in window && Notification.permission === 'default';
  ask.hidden = !canAsk();
  ask.onclick = async () => {
    await Notification.requestPermission().catch(() => {});
    ask.hidden = !canAsk();
  };
  $('channel-mute').onclick = () => {
    const id = state.channelId;
    if (muted.has(id)) muted.delete(id);
    else muted.add(id);
    localStorage.setItem(MUTED, JSON.stringify([...muted]));
    renderMute();
  };
  for (const t of ['unread', 'dms', 'guilds', 'select']) on(t, renderTitle);
  on('select', renderMute);
}

export const isMuted = (channelId) => muted.has(channelId);

function renderMute() {
  const c = channel();
  const b = $('channel-mute');
  b.hidden = !c || c.kind === 'voice';
  const on = muted.has(state.channelId);
  b.setAttribute('aria-pressed', String(on));
  b.setAttribute('aria-label', on ? 'Unmute this channel' : 'Mute this channel');
  b.title = on ? 'Muted: no notifications from here' : 'Mute notifications from this channel';
  b.textContent = on ? '🔕' : '🔔';
}

/** The tab's title: mentions and unread DMs first, as `(3) confab`. */
function renderTitle() {
  let n = [...state.dmReads.values()].reduce((s, r) => s + (r.unread_count || 0), 0);
  for (const g of state.guilds.values()) for (const r of g.reads.values()) n += r.mention_count || 0;
  document.title = n ? `(${n}) confab` : 'confab';
}

/** A message arrived (MESSAGE_CREATE): notify if it is for the user and they are not looking. */
export function onMessage(m) {
  if (!state.me || m.author_id === state.me.id || muted.has(m.channel_id)) return;
  const dm = state.dms.get(m.channel_id);
  if (!dm && !m.mentions?.includes(state.me.id)) return;
  if (m.channel_id === state.channelId && document.hasFocus()) return;
  const where = dm ? dmTitle(dm) : `#${channel(m.channel_id)?.name ?? 'a channel'}`;
  const title = dm ? username(m.author_id) : `${username(m.author_id)} in ${where}`;
  const body = m.content.replace(/<@(\d+)>/g, (_, id) => `@${username(id)}`).slice(0, 200) || (m.attachments?.length ? 'sent a file' : '');
  beep();
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const n = new Notification(title, { body, tag: m.channel_id });
  n.onclick = () => { window.focus(); open(m.channel_id); n.close(); };
}

/** A short two-tone chime, made here (no sound file to fetch). */
function beep() {
  try {
    audio ??= new AudioContext();
    const t = audio.currentTime;
    for (const [i, hz] of [[0, 880], [1, 1320]]) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.frequency.value = hz;
      g.gain.setValueAtTime(0.08, t + i * 0.09);
      g.gain.exponentialRampToValueAtTime(0.001, t + i * 0.09 + 0.12);
      o.connect(g).connect(audio.destination);
      o.start(t + i * 0.09);
      o.stop(t + i * 0.09 + 0.13);
    }
  } catch { /* no audio: the notification still shows */ }
}

