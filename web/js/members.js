// The member list of the current guild, grouped by presence, each other member with a button to
// message them; in a DM, the people in it (and, in a 1:1 DM, Block / Unblock).

import { del, put } from './api.js';
import { $, avatar, h, icon, toast } from './dom.js';
import { openSettings } from './settings.js';
import { DMS, PERM, can, channel, emit, guild, nameOf, on, state } from './state.js';

let nav;

const LABEL = { online: 'Online', idle: 'Idle', dnd: 'Do not disturb', offline: 'Offline' };

/** `actions`: {messageUser(userId)}. */
export function initMembers(actions) {
  nav = actions;
  for (const t of ['guilds', 'members', 'select', 'dms', 'blocks']) on(t, render);
  // On a narrow screen the list is a drawer over the conversation (and the call dock): it starts
  // folded there, and folds again whenever the window narrows. Wide, the user's choice holds.
  const narrow = matchMedia('(max-width: 1000px)');
  let wideShown = true;
  $('toggle-members').onclick = () => {
    const shown = $('app').classList.contains('no-members');
    if (!narrow.matches) wideShown = shown;
    show(shown);
  };
  narrow.addEventListener('change', () => show(!narrow.matches && wideShown));
  show(!narrow.matches);
}

function show(shown) {
  $('app').classList.toggle('no-members', !shown);
  $('toggle-members').setAttribute('aria-expanded', String(shown));
}

function messageButton(userId, name) {
  if (userId === state.me.id) return null;
  return h('button', {
    class: 'icon small message-user', title: `Message ${name}`, 'aria-label': `Message ${name}`,
    onclick: () => nav.messageUser(userId),
  }, icon('chat', 14));
}

/** For moderators: opens the member in the server settings (roles, time-out, kick, ban). */
function manageButton(g, m) {
  if (m.user_id === state.me.id || m.user_id === g.guild.owner_id) return null;
  if (![PERM.KICK_MEMBERS, PERM.BAN_MEMBERS, PERM.MODERATE_MEMBERS, PERM.MANAGE_ROLES].some((p) => can(p, g))) return null;
  return h('button', {
    class: 'icon small manage-user', title: `Manage ${m.username}`, 'aria-label': `Manage ${m.username}`,
    onclick: () => openSettings(g.guild.id, nav, 'members', m.user_id),
  }, '⋯');
}

function renderDm(d) {
  const people = [...d.recipients].sort((a, b) => a.username.localeCompare(b.username));
  const other = d.recipients.length === 2 ? d.recipients.find((u) => u.id !== state.me.id) : null;
  const blocked = other && state.blocked?.has(other.id);
  $('members').replaceChildren(h('h3', {}, `In this conversation — ${people.length}`),
    h('ul', { 'aria-label': 'In this conversation' }, people.map((u) => h('li', { class: 'member', 'data-user': u.id },
      avatar(u.id, nameOf(u), null, u.avatar), h('span', {}, nameOf(u), u.id === state.me.id ? h('span', { class: 'muted' }, ' (you)') : null))),
    ),
    other ? h('button', { class: 'small', id: 'dm-block', onclick: () => toggleBlock(other, blocked) },
      blocked ? `Unblock ${other.username}` : `Block ${other.username}`) : null);
}

async function toggleBlock(user, blocked) {
  try {
    if (blocked) await del(`/users/@me/blocks/${user.id}`);
    else await put(`/users/@me/blocks/${user.id}`);
    state.blocked ??= new Set();
    if (blocked) state.blocked.delete(user.id);
    else state.blocked.add(user.id);
    toast(blocked ? `${user.username} is unblocked` : `${user.username} is blocked: neither of you can message the other`);
    emit('blocks');
  } catch (e) { toast(e.message); }
}

function render() {
  if (state.guildId === DMS) {
    const d = channel();
    return d?.kind === 'dm' ? renderDm(d) : $('members').replaceChildren();
  }
  const g = guild();
  if (!g) return $('members').replaceChildren();
  const all = [...g.members.values()].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  const online = all.filter((m) => m.status !== 'offline');
  const offline = all.filter((m) => m.status === 'offline');
  const group = (title, list) => list.length ? [
    h('h3', {}, `${title} — ${list.length}`),
    h('ul', { 'aria-label': title }, list.map((m) => h('li', {
      class: `member ${m.status}`, 'data-user': m.user_id,
    }, avatar(m.user_id, nameOf(m), m.status, m.avatar), h('span', {}, nameOf(m),
      m.user_id === g.guild.owner_id ? h('span', { title: 'Server owner', class: 'owner' }, icon('crown', 14), h('span', { class: 'visually-hidden' }, ' (owner)')) : null,
      m.user_id === state.me.id ? h('span', { class: 'muted' }, ' (you)') : null),
    h('span', { class: 'visually-hidden' }, `, ${LABEL[m.status]}`), messageButton(m.user_id, m.username), manageButton(g, m)))),
  ] : [];
  $('members').replaceChildren(...group('Online', online), ...group('Offline', offline));
}
