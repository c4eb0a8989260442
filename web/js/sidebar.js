// The server rail and the channel list: direct messages (the rail's first button: the DM list with
// unread badges), guilds (create, join by code, invite), text channels with unread and mention
// badges, voice channels with who is in them.

import { del, patch, post } from './api.js';
import { $, avatar, h, icon, idCmp, initials, toast } from './dom.js';
import { ask, confirm, newChannel, show } from './dialog.js';
import { openSettings } from './settings.js';
import { DMS, PERM, apply, can, channel, dmTitle, guild, on, state, username } from './state.js';

/** Any of these opens the server settings. */
const MANAGE = [PERM.MANAGE_GUILD, PERM.MANAGE_ROLES, PERM.MANAGE_CHANNELS, PERM.KICK_MEMBERS, PERM.BAN_MEMBERS,
  PERM.MODERATE_MEMBERS, PERM.MANAGE_MESSAGES, PERM.VIEW_AUDIT_LOG];

let nav;

/** `actions`: {selectGuild(id), selectChannel(id)}. */
export function initSidebar(actions) {
  nav = actions;
  $('dm-home').onclick = () => nav.selectGuild(DMS);
  $('guild-create').onclick = async () => {
    const name = await ask({ title: 'Create a server', label: 'Server name', ok: 'Create' });
    if (!name) return;
    try {
      const g = await post('/guilds', { name });
      nav.selectGuild(g.guild.id, g);
    } catch (e) { toast(e.message); }
  };
  $('guild-join').onclick = async () => {
    const code = await ask({ title: 'Join a server', label: 'Invite code', ok: 'Join', max: 64 });
    if (!code) return;
    try {
      const g = await post(`/invites/${encodeURIComponent(code)}`);
      nav.selectGuild(g.guild.id, g);
    } catch (e) { toast(e.message); }
  };
  $('channel-edit').onclick = async () => {
    const c = channel();
    if (!c) return;
    const name = await ask({ title: 'Edit channel', label: 'Name', value: c.name, ok: 'Next' });
    if (name === null) return;
    const topic = await ask({ title: 'Edit channel', label: 'Topic (empty: none)', value: c.topic ?? '', max: 1024, optional: true, ok: 'Save' });
    if (topic === null) return;
    try {
      apply('CHANNEL_UPDATE', await patch(`/channels/${c.id}`, { name, topic }));
    } catch (e) { toast(e.message); }
  };
  $('guild-settings').onclick = () => openSettings(state.guildId, nav);
  $('guild-leave').onclick = async () => {
    const g = guild();
    if (!g || !await confirm({ title: `Leave ${g.guild.name}?`, text: 'You can come back with an invite.', ok: 'Leave' })) return;
    state.leaving.add(g.guild.id);
    try {
      await del(`/users/@me/guilds/${g.guild.id}`);
      apply('GUILD_DELETE', { id: g.guild.id }); // the gateway says so too
      nav.selectGuild(state.guilds.keys().next().value ?? DMS);
    } catch (e) { toast(e.message); }
  };
  $('invite-create').onclick = async () => {
    try {
      const inv = await post(`/guilds/${state.guildId}/invites`, { max_age_secs: 604800 });
      await show({ title: 'Invite people', text: 'Share this code; it joins with “Join a server” and expires in 7 days (other limits: Server settings → Invites).', code: inv.code });
    } catch (e) { toast(e.message); }
  };
  for (const t of ['guilds', 'channels', 'voice-states', 'unread', 'select', 'stream', 'dms']) on(t, renderAll);
}

function renderAll() {
  renderGuilds();
  renderChannels();
}

function renderGuilds() {
  const dmUnread = [...state.dmReads.values()].reduce((n, r) => n + (r.unread_count || 0), 0);
  $('dm-home').replaceChildren(icon('chat', 22), dmUnread ? h('span', { class: 'badge dot' }, String(dmUnread)) : '');
  $('dm-home').setAttribute('aria-label', `Direct messages${dmUnread ? `, ${dmUnread} unread` : ''}`);
  $('dm-home').setAttribute('aria-current', state.guildId === DMS ? 'true' : 'false');
  $('guild-list').replaceChildren(...[...state.guilds.values()].map(({ guild: g, reads }) => {
    const unread = [...reads.values()].some((r) => r.unread_count > 0);
    const mentions = [...reads.values()].reduce((n, r) => n + (r.mention_count || 0), 0);
    const label = `${g.name}${mentions ? `, ${mentions} mentions` : unread ? ', unread messages' : ''}`;
    return h('li', {}, h('button', {
      class: 'round', title: g.name, 'aria-label': label, 'aria-current': g.id === state.guildId ? 'true' : null,
      onclick: () => nav.selectGuild(g.id),
    }, initials(g.name), mentions ? h('span', { class: 'badge dot' }, String(mentions)) : unread ? h('span', { class: 'dot online' }) : null));
  }));
}

function renderChannels() {
  if (state.guildId === DMS) return renderDms();
  const g = guild();
  $('guild-name').textContent = g?.guild.name ?? 'No server';
  $('guild-leave').hidden = !g || g.guild.owner_id === state.me.id;
  $('invite-create').hidden = !g || !can(PERM.CREATE_INVITE, g);
  $('guild-settings').hidden = !g || !MANAGE.some((p) => can(p, g));
  $('channel-edit').hidden = !g || !can(PERM.MANAGE_CHANNELS, g) || !channel()?.guild_id;
  if (!g) return $('channel-list').replaceChildren();
  const owner = can(PERM.MANAGE_CHANNELS, g);
  const section = (kind, title) => {
    const items = g.channels.filter((c) => c.kind === kind).map((c) => h('li', {}, channelButton(g, c),
      kind === 'voice' ? voiceUsers(g, c) : null));
    return [
      h('h3', {}, title, owner ? h('button', {
        class: 'icon small', 'aria-label': `Create a ${kind} channel`, title: `Create a ${kind} channel`,
        onclick: () => createChannel(kind),
      }, '+') : null),
      h('ul', { 'aria-label': title }, items),
    ];
  };
  $('channel-list').replaceChildren(...section('text', 'Text channels'), ...section('live', 'Live channels'),
    ...section('voice', 'Voice channels'));
}

function renderDms() {
  $('guild-name').textContent = 'Direct messages';
  $('invite-create').hidden = true;
  $('guild-leave').hidden = true;
  $('guild-settings').hidden = true;
  $('channel-edit').hidden = true;
  const items = [...state.dms.values()]
    .sort((a, b) => idCmp(b.last_message_id ?? b.id, a.last_message_id ?? a.id))
    .map((d) => {
      const r = state.dmReads.get(d.id);
      const unread = r?.unread_count > 0 && d.id !== state.channelId ? r.unread_count : 0;
      const title = dmTitle(d);
      return h('li', {}, h('button', {
        class: `channel${unread ? ' unread' : ''}`, 'data-channel': d.id, 'aria-label': `${title}${unread ? `, ${unread} unread` : ''}`,
        'aria-current': d.id === state.channelId ? 'true' : null, onclick: () => nav.selectChannel(d.id),
      }, h('span', { 'aria-hidden': 'true', class: 'hash' }, '@'), h('span', { class: 'name' }, title),
      unread ? h('span', { class: 'badge' }, String(unread)) : null));
    });
  $('channel-list').replaceChildren(h('h3', {}, 'Direct messages'),
    items.length ? h('ul', { 'aria-label': 'Direct messages' }, items)
      : h('p', { class: 'muted hint' }, 'Message someone from a server’s member list.'));
}

function channelButton(g, c) {
  const r = g.reads.get(c.id);
  const unread = c.kind !== 'voice' && r?.unread_count > 0 && c.id !== state.channelId;
  const mentions = c.kind !== 'voice' ? r?.mention_count ?? 0 : 0;
  const streaming = c.kind === 'live' && state.streams.get(c.id)?.state === 'live';
  const label = [c.kind === 'voice' ? `${c.name} (voice)` : c.kind === 'live' ? `${c.name} (live${streaming ? ', streaming now' : ''})` : c.name, mentions ? `${mentions} mentions` : unread ? 'unread' : null]
    .filter(Boolean).join(', ');
  return h('button', {
    class: `channel${unread ? ' unread' : ''}`, 'aria-label': label, 'data-channel': c.id,
    'aria-current': c.id === state.channelId ? 'true' : null, onclick: () => nav.selectChannel(c.id),
  }, c.kind === 'voice' ? icon('speaker') : c.kind === 'live' ? icon('live') : h('span', { 'aria-hidden': 'true', class: 'hash' }, '#'), h('span', { class: 'name' }, c.name),
  streaming ? h('span', { class: 'badge live' }, 'LIVE') : null,
  mentions ? h('span', { class: 'badge' }, String(mentions)) : null,
  c.kind === 'voice' && c.voice_mode && c.voice_mode !== 'hybrid' ? h('span', { class: 'badge quiet' }, c.voice_mode) : null);
}

function voiceUsers(g, c) {
  const users = [...g.voice.values()].filter((v) => v.channel_id === c.id);
  if (!users.length) return null;
  return h('ul', { class: 'voice-users', 'aria-label': `In ${c.name}` }, users.map((v) => {
    const a = avatar(v.user_id, username(v.user_id));
    a.style.width = a.style.height = '20px';
    a.style.fontSize = '.6rem';
    return h('li', {}, a, username(v.user_id), v.self_mute || v.server_mute ? h('span', { title: 'muted' }, icon('micOff', 14), h('span', { class: 'visually-hidden' }, ' (muted)')) : null);
  }));
}

async function createChannel(kind) {
  const r = await newChannel(kind);
  if (!r) return;
  try {
    const body = { name: r.value, kind: r.kind };
    if (r.mode) body.voice_mode = r.mode;
    const c = await post(`/guilds/${state.guildId}/channels`, body);
    apply('CHANNEL_CREATE', c); // the answer may beat the gateway's CHANNEL_CREATE
    nav.selectChannel(c.id);
  } catch (e) { toast(e.message); }
}
