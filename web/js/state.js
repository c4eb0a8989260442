// The client's model of the world, fed by READY and the gateway's dispatches. Views subscribe to
// named changes ('guilds', 'channels', 'members', 'messages', 'typing', 'voice-states', 'unread',
// 'stream', 'dms')
// and redraw what they own.

import { idCmp } from './dom.js';
import { applyReaction } from './reactions.js';

export const state = {
  me: null,
  /** guild id → {guild, channels[], members: Map(user → member), reads: Map(channel → read state),
   *  voice: Map(user → voice state)} */
  guilds: new Map(),
  /** Guilds I am leaving or deleting myself (no "you are no longer in" toast) */
  leaving: new Set(),
  guildId: null,
  channelId: null,
  /** channel id → {list: messages oldest first, more: older ones exist, loaded} */
  messages: new Map(),
  /** channel id → Map(user → expiry ms) */
  typing: new Map(),
  /** live channel id → its last STREAM_UPDATE */
  streams: new Map(),
  /** DM channel id → the DM (channel fields, recipients, last_message_id) */
  dms: new Map(),
  /** DM channel id → its read state, as guilds keep theirs */
  dmReads: new Map(),
};

/** The pseudo guild id of the direct messages view (a real guild id is all digits). */
export const DMS = '@me';

const listeners = new Map();
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, []);
  listeners.get(topic).push(fn);
}
export function emit(topic, detail) {
  for (const fn of listeners.get(topic) ?? []) fn(detail);
}

export const guild = (id = state.guildId) => state.guilds.get(id);
export const channel = (id = state.channelId) => {
  if (state.dms.has(id)) return state.dms.get(id);
  for (const g of state.guilds.values()) {
    const c = g.channels.find((c) => c.id === id);
    if (c) return c;
  }
  return null;
};
/** The read states a channel's belong with: its guild's, or the DMs'. */
export const readsOf = (c) => (c && !c.guild_id ? state.dmReads : guild(c?.guild_id)?.reads);
/** What a user is called: their display name, else their username. */
export const nameOf = (u) => u.display_name || u.username;
export const username = (userId, guildId = state.guildId) => {
  const mine = state.guilds.get(guildId)?.members.get(userId) ?? (userId === state.me?.id ? state.me : null);
  if (mine) return nameOf(mine);
  for (const d of state.dms.values()) {
    const u = d.recipients.find((r) => r.id === userId);
    if (u) return nameOf(u);
  }
  for (const g of state.guilds.values()) {
    const m = g.members.get(userId);
    if (m) return nameOf(m);
  }
  return 'unknown';
};
/** A DM's title: its name, else the other people in it. */
export const dmTitle = (d) => d.name || d.recipients.filter((u) => u.id !== state.me?.id).map((u) => u.username).join(', ') || 'Just you';

/** Adds (or refreshes) DMs from the server, with their read states. */
export function addDms(list) {
  for (const d of list) {
    state.dms.set(d.id, d);
    state.dmReads.set(d.id, { channel_id: d.id, last_read_id: state.dmReads.get(d.id)?.last_read_id ?? '0', unread_count: d.unread_count ?? 0, mention_count: d.mention_count ?? 0 });
  }
  emit('dms');
}

/** Permission bits (Discord's values), as the server's `permissions` strings hold them. */
export const PERM = {
  CREATE_INVITE: 1n << 0n, KICK_MEMBERS: 1n << 1n, BAN_MEMBERS: 1n << 2n, ADMINISTRATOR: 1n << 3n,
  MANAGE_CHANNELS: 1n << 4n, MANAGE_GUILD: 1n << 5n, VIEW_AUDIT_LOG: 1n << 7n, MANAGE_MESSAGES: 1n << 13n,
  MUTE_MEMBERS: 1n << 22n, MANAGE_ROLES: 1n << 28n, MODERATE_MEMBERS: 1n << 40n,
};
/** Whether I hold `perm` in guild `g` (default: the current one); the server decides in the end. */
export function can(perm, g = guild()) {
  if (!g) return false;
  const mine = BigInt(g.permissions ?? '0');
  return g.guild.owner_id === state.me?.id || (mine & PERM.ADMINISTRATOR) !== 0n || (mine & perm) === perm;
}
/** Sets my standing in a guild (roles, permissions, rank) from the server. */
export function setStanding(id, { roles, permissions, rank }) {
  const g = state.guilds.get(id);
  if (!g) return;
  Object.assign(g, { roles: roles ?? g.roles, permissions: permissions ?? g.permissions, rank: rank ?? g.rank });
  emit('guilds');
}

function addGuild({ guild, channels, members = [], read_states = [], voice_states = [], large = false, roles = [], permissions = '0', rank = 0 }) {
  const old = state.guilds.get(guild.id);
  state.guilds.set(guild.id, {
    guild,
    roles,
    permissions,
    rank,
    // Large guilds come without their member list: it is asked for (op 8) when the guild is shown.
    large,
    membersRequested: old?.membersRequested ?? false,
    channels: [...channels].sort((a, b) => a.position - b.position),
    members: old?.members ?? new Map(members.map((m) => [m.user_id, m])),
    reads: old?.reads ?? new Map(read_states.map((r) => [r.channel_id, r])),
    voice: old?.voice ?? new Map(voice_states.filter((v) => v.channel_id).map((v) => [v.user_id, v])),
  });
}

/** Applies one dispatch to the model. */
export function apply(t, d) {
  switch (t) {
    case 'READY':
      state.me = d.user;
      state.guilds.clear();
      for (const g of d.guilds) addGuild(g);
      // Histories may have missed anything while the session was gone: reload them on demand.
      state.messages.clear();
      emit('guilds');
      break;
    case 'GUILD_CREATE':
      addGuild(d);
      emit('guilds');
      break;
    case 'GUILD_DELETE':
      state.guilds.delete(d.id);
      emit('guilds');
      break;
    case 'USER_UPDATE': {
      const profile = { display_name: d.display_name, avatar: d.avatar };
      if (d.id === state.me?.id) Object.assign(state.me, profile);
      for (const g of state.guilds.values()) if (g.members.has(d.id)) Object.assign(g.members.get(d.id), profile);
      for (const dm of state.dms.values()) for (const u of dm.recipients) if (u.id === d.id) Object.assign(u, profile);
      emit('members');
      emit('me');
      break;
    }
    case 'GUILD_UPDATE': {
      const g = guild(d.id);
      if (g) g.guild = d;
      emit('guilds');
      break;
    }
    case 'GUILD_MEMBER_UPDATE': {
      const m = guild(d.guild_id)?.members.get(d.user_id);
      if (m) Object.assign(m, { roles: d.roles, timeout_until: d.timeout_until });
      emit('members', d.guild_id);
      break;
    }
    case 'GUILD_ROLE_CREATE':
    case 'GUILD_ROLE_UPDATE': {
      const g = guild(d.guild_id);
      if (g) g.roles = [...g.roles.filter((r) => r.id !== d.id), d].sort((a, b) => b.position - a.position);
      emit('members', d.guild_id);
      break;
    }
    case 'GUILD_ROLE_DELETE': {
      const g = guild(d.guild_id);
      if (g) g.roles = g.roles.filter((r) => r.id !== d.role_id);
      for (const m of g?.members.values() ?? []) m.roles = m.roles?.filter((r) => r !== d.role_id);
      emit('members', d.guild_id);
      break;
    }
    case 'CHANNEL_DELETE': {
      const g = guild(d.guild_id);
      if (g) g.channels = g.channels.filter((c) => c.id !== d.id);
      state.messages.delete(d.id);
      emit('channels', d.guild_id);
      break;
    }
    case 'GUILD_MEMBER_REMOVE':
      guild(d.guild_id)?.members.delete(d.user_id);
      emit('members', d.guild_id);
      break;
    case 'GUILD_MEMBER_ADD':
      guild(d.guild_id)?.members.set(d.user_id, { user_id: d.user_id, username: d.username, status: d.status, joined_at: Date.now() });
      emit('members', d.guild_id);
      break;
    case 'PRESENCE_UPDATE': {
      const m = guild(d.guild_id)?.members.get(d.user_id);
      if (m) m.status = d.status;
      emit('members', d.guild_id);
      break;
    }
    case 'PRESENCE_UPDATE_BULK': {
      const g = guild(d.guild_id);
      for (const p of d.presences) {
        const m = g?.members.get(p.user_id);
        if (m) m.status = p.status;
      }
      emit('members', d.guild_id);
      break;
    }
    case 'GUILD_MEMBERS_CHUNK': {
      const g = guild(d.guild_id);
      for (const m of d.members) g?.members.set(m.user_id, m);
      emit('members', d.guild_id);
      break;
    }
    case 'CHANNEL_CREATE':
    case 'CHANNEL_UPDATE': {
      if (d.kind === 'dm') {
        addDms([d]);
        break;
      }
      const g = guild(d.guild_id);
      if (!g) break;
      g.channels = [...g.channels.filter((c) => c.id !== d.id), d].sort((a, b) => a.position - b.position);
      emit('channels', d.guild_id);
      break;
    }
    case 'VOICE_STATE_UPDATE': {
      const g = guild(d.guild_id);
      if (!g) break;
      if (d.channel_id) g.voice.set(d.user_id, d);
      else g.voice.delete(d.user_id);
      emit('voice-states', d.guild_id);
      break;
    }
    case 'STREAM_UPDATE':
      state.streams.set(d.channel_id, d);
      emit('stream', d.channel_id);
      break;
    case 'MESSAGE_CREATE':
      messageCreated(d);
      break;
    case 'MESSAGE_UPDATE': {
      const m = state.messages.get(d.channel_id)?.list.find((m) => m.id === d.id);
      if (m) Object.assign(m, d);
      emit('messages', { channelId: d.channel_id, updated: d.id });
      break;
    }
    case 'MESSAGE_DELETE': {
      const h = state.messages.get(d.channel_id);
      if (h) h.list = h.list.filter((m) => m.id !== d.id);
      emit('messages', { channelId: d.channel_id, deleted: d.id });
      break;
    }
    case 'MESSAGE_REACTION_ADD':
    case 'MESSAGE_REACTION_REMOVE': {
      const m = state.messages.get(d.channel_id)?.list.find((m) => m.id === d.message_id);
      if (!m) break;
      applyReaction(m, d, t === 'MESSAGE_REACTION_ADD');
      emit('messages', { channelId: d.channel_id, updated: d.message_id });
      break;
    }
    case 'TYPING_START':
      if (d.user_id === state.me.id) break;
      if (!state.typing.has(d.channel_id)) state.typing.set(d.channel_id, new Map());
      state.typing.get(d.channel_id).set(d.user_id, Date.now() + 10000);
      emit('typing', d.channel_id);
      break;
  }
}

function messageCreated(m) {
  const h = state.messages.get(m.channel_id);
  if (h?.loaded && !h.list.some((x) => x.id === m.id)) {
    h.list.push(m);
    h.list.sort((a, b) => idCmp(a.id, b.id));
  }
  state.typing.get(m.channel_id)?.delete(m.author_id);
  emit('typing', m.channel_id);
  const dm = state.dms.get(m.channel_id);
  if (dm) {
    dm.last_message_id = m.id;
    emit('dms');
  }
  if (m.author_id !== state.me.id) {
    const reads = m.guild_id ? guild(m.guild_id)?.reads : state.dmReads;
    const r = reads?.get(m.channel_id) ?? { channel_id: m.channel_id, last_read_id: '0', unread_count: 0, mention_count: 0 };
    r.unread_count++;
    if (m.mentions.includes(state.me.id)) r.mention_count++;
    reads?.set(m.channel_id, r);
    emit('unread', m.channel_id);
  }
  emit('messages', { channelId: m.channel_id, created: m.id });
}

/** Marks a channel read up to `messageId` locally (the caller acks it on the server). */
export function markRead(channelId, messageId) {
  const reads = readsOf(channel(channelId));
  if (!reads) return;
  const r = reads.get(channelId) ?? { channel_id: channelId, last_read_id: '0' };
  if (idCmp(messageId, r.last_read_id) < 0) return;
  Object.assign(r, { last_read_id: messageId, unread_count: 0, mention_count: 0 });
  reads.set(channelId, r);
  emit('unread', channelId);
}
