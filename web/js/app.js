// Entry point: signs in, runs the gateway, and routes selections to the views. The last guild and
// channel are remembered per browser, so a reload lands where the user was.

import { ApiError, get, getToken, post, setToken } from './api.js';
import { showAuth } from './auth.js';
import { $, idCmp, toast } from './dom.js';
import { Gateway } from './gateway.js';
import { initMembers } from './members.js';
import { initNotify, onMessage } from './notify.js';
import { composerHint, flushAck, initMessages, openChannel } from './messages.js';
import { openProfile } from './profile.js';
import { initSidebar } from './sidebar.js';
import { DMS, addDms, apply, channel, emit, guild, nameOf, on, setStanding, state } from './state.js';
import { initVoiceView, resumeCall, showDock, showVoice, voiceSession } from './voice_view.js';
import { hideWatch, initWatch, showWatch } from './watch.js';

let gateway = null;
const remember = () => localStorage.setItem('confab.last', JSON.stringify({ g: state.guildId, c: state.channelId }));

function selectGuild(id, full) {
  if (id === DMS) {
    state.guildId = DMS;
    const c = state.dms.get(state.channelId) ?? [...state.dms.values()].sort((a, b) => idCmp(b.last_message_id ?? b.id, a.last_message_id ?? a.id))[0];
    return selectChannel(c?.id ?? null);
  }
  // The HTTP answer may beat GUILD_CREATE on the gateway: take it now, members come with it below.
  if (full && !state.guilds.has(id)) apply('GUILD_CREATE', full);
  state.guildId = id;
  const g = guild(id);
  if (g && !g.members.size) loadGuildExtras(id);
  if (g?.large && !g.membersRequested) {
    g.membersRequested = true;
    gateway?.requestMembers(id);
  }
  const c = g?.channels.find((c) => c.id === state.channelId) ?? g?.channels.find((c) => c.kind === 'text');
  selectChannel(c?.id ?? null);
}

/** Members, read states and voice states of a guild that arrived without them (joined just now). */
async function loadGuildExtras(id) {
  try {
    const [members, reads, voice] = await Promise.all([
      get(`/guilds/${id}/members`), get(`/guilds/${id}/read-states`), get(`/guilds/${id}/voice-states`)]);
    const g = guild(id);
    for (const m of members) if (!g.members.has(m.user_id)) g.members.set(m.user_id, m);
    for (const r of reads) g.reads.set(r.channel_id, r);
    for (const v of voice) if (v.channel_id) g.voice.set(v.user_id, v);
    emit('members', id);
    emit('guilds');
  } catch (e) { toast(e.message); }
}

function selectChannel(id) {
  flushAck(); // what was on screen counts as read
  state.channelId = id;
  const c = channel(id);
  $('empty').hidden = !!c;
  const live = c?.kind === 'live';
  const text = c?.kind === 'text' || c?.kind === 'dm';
  $('chat').hidden = !text && !live;
  $('voice').hidden = c?.kind !== 'voice';
  $('watch').hidden = !live;
  $('main').classList.toggle('live', live);
  if (!live) hideWatch();
  if (!c) $('channel-title').textContent = 'Welcome';
  $('channel-topic').textContent = c ? c.topic || (guild(c.guild_id)?.guild.name ?? '') : '';
  remember();
  emit('select');
  closeDrawer();
  showDock(); // a call goes on above any text channel
  if (text || live) openChannel();
  if (live) showWatch();
  if (c?.kind === 'voice') showVoice();
  focusView(c);
}

/** After a choice in the rail or channel list (or with focus nowhere, as after signing in), focus
 *  moves to what was opened: the composer (the history on a phone, so no keyboard pops up), or
 *  Join voice. Focus elsewhere (a dialog, the composer) stays put. */
function focusView(c) {
  const at = document.activeElement;
  if (!c || !(at === document.body || at?.closest('#guilds, #sidebar, #auth'))) return;
  if (c.kind === 'voice') return ($('voice-join') ?? $('voice-mute'))?.focus();
  (matchMedia('(max-width: 700px)').matches ? $('history') : $('composer-input')).focus();
}

/** Any channel, in whichever guild it is (the dock opens the call's channel from anywhere). */
function showChannel(id) {
  const c = channel(id);
  if (c?.kind === 'dm') state.guildId = DMS;
  if (!c || c.kind === 'dm' || c.guild_id === state.guildId) return selectChannel(id);
  state.channelId = id;
  selectGuild(c.guild_id);
}

function closeDrawer() {
  $('app').classList.remove('show-sidebar');
  $('toggle-sidebar').setAttribute('aria-expanded', 'false');
}

/** A DM with `userId` (found, or opened on the server), shown. */
async function messageUser(userId) {
  try {
    const d = await post('/users/@me/channels', { recipients: [userId] });
    addDms([d]);
    showChannel(d.id);
  } catch (e) { toast(e.message); }
}

/** The DM list and blocks, after READY (a resumed session keeps them current by events). */
async function loadDms() {
  try {
    const [list, blocked] = await Promise.all([get('/users/@me/channels'), get('/users/@me/blocks')]);
    state.blocked = new Set(blocked.map((u) => u.id));
    addDms(list);
    if (state.guildId === DMS && !channel(state.channelId)) selectGuild(DMS);
  } catch (e) { toast(e.message); }
}

/** My permissions in a guild changed (a role of mine, or what one grants): ask the server. */
async function refreshStanding(id) {
  try {
    setStanding(id, await get(`/guilds/${id}`));
  } catch { /* gone: GUILD_DELETE follows */ }
}

function dispatch({ t, d }) {
  const leaving = t === 'GUILD_DELETE' ? guild(d.id)?.guild.name : null;
  apply(t, d);
  if (leaving && !state.leaving?.has(d.id)) toast(`You are no longer in ${leaving}`);
  if (t === 'GUILD_DELETE') state.leaving.delete(d.id);
  if (t.startsWith('GUILD_ROLE_') || (t === 'GUILD_MEMBER_UPDATE' && d.user_id === state.me.id)) refreshStanding(d.guild_id);
  if (t === 'CHANNEL_DELETE' && state.channelId === d.id) selectGuild(d.guild_id);
  if (t === 'MESSAGE_CREATE') onMessage(d);
  if (t === 'READY') {
    loadDms();
    resumeCall();
    const last = JSON.parse(localStorage.getItem('confab.last') ?? '{}');
    if (last.g === DMS) state.guildId = DMS;
    if (state.guildId !== DMS && !state.guilds.has(state.guildId)) state.guildId = state.guilds.has(last.g) ? last.g : state.guilds.keys().next().value ?? null;
    if (!channel(state.channelId) && (guild()?.channels.some((c) => c.id === last.c) || state.guildId === DMS)) state.channelId = last.c;
    selectGuild(state.guildId);
  }
  if (t === 'GUILD_DELETE' && state.guildId === d.id) {
    state.channelId = null;
    selectGuild(state.guilds.keys().next().value ?? DMS);
  }
  if (t === 'GUILD_CREATE') {
    if (!guild(d.guild.id)?.members.size) loadGuildExtras(d.guild.id);
    if (!state.guildId) selectGuild(d.guild.id);
  }
  if (t === 'CHANNEL_UPDATE' && d.id === state.channelId && d.kind === 'voice' && !voiceSession()) showVoice();
  if (t === 'CHANNEL_UPDATE' && d.id === state.channelId && (d.kind === 'text' || d.kind === 'live')) {
    composerHint();
    $('channel-title').textContent = `# ${d.name}`;
    $('channel-topic').textContent = d.topic || (guild(d.guild_id)?.guild.name ?? '');
  }
}

function start(user) {
  state.me = user;
  $('me-name').textContent = nameOf(user);
  $('app').hidden = false;
  $('auth').hidden = true;
  gateway = new Gateway(getToken());
  // Exposed for tests and debugging: drop() simulates a network failure.
  window.confab = { state, gateway, voice: voiceSession };
  gateway.addEventListener('dispatch', (e) => dispatch(e.detail));
  gateway.addEventListener('state', (e) => {
    $('conn-state').textContent = { connected: '', connecting: 'Connecting…', reconnecting: 'Reconnecting…', closed: 'Offline' }[e.detail];
    $('app').dataset.gateway = e.detail;
  });
  gateway.addEventListener('auth-failed', () => logout(false));
  gateway.connect();
}

async function logout(tell = true) {
  voiceSession()?.leave();
  gateway?.stop();
  if (tell) await post('/auth/logout').catch(() => {});
  setToken(null);
  location.reload();
}

async function boot() {
  initSidebar({ selectGuild, selectChannel });
  initMessages();
  initMembers({ messageUser, selectGuild, selectChannel });
  initVoiceView({ showChannel });
  initWatch();
  initNotify(showChannel);
  $('logout').onclick = () => logout();
  $('user-settings').onclick = () => openProfile({ stop: () => { voiceSession()?.leave(); gateway?.stop(); } });
  on('me', () => { $('me-name').textContent = nameOf(state.me); });
  $('toggle-sidebar').onclick = () => {
    const open = $('app').classList.toggle('show-sidebar');
    $('toggle-sidebar').setAttribute('aria-expanded', String(open));
    if (open) $('channel-list').querySelector('button')?.focus();
  };
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeDrawer(); });
  signIn();
}

async function signIn() {
  if (!getToken()) return showAuth(start);
  try {
    start(await get('/users/@me'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { setToken(null); return showAuth(start); }
    toast(e.message, 10000);
    setTimeout(signIn, 3000);
  }
}

boot();
