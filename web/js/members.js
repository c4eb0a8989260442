// The member list of the current guild, grouped by presence.

import { $, avatar, h, icon } from './dom.js';
import { guild, on, state } from './state.js';

const LABEL = { online: 'Online', idle: 'Idle', dnd: 'Do not disturb', offline: 'Offline' };

export function initMembers() {
  for (const t of ['guilds', 'members', 'select']) on(t, render);
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

function render() {
  const g = guild();
  if (!g) return $('members').replaceChildren();
  const all = [...g.members.values()].sort((a, b) => a.username.localeCompare(b.username));
  const online = all.filter((m) => m.status !== 'offline');
  const offline = all.filter((m) => m.status === 'offline');
  const group = (title, list) => list.length ? [
    h('h3', {}, `${title} — ${list.length}`),
    h('ul', { 'aria-label': title }, list.map((m) => h('li', {
      class: `member ${m.status}`, 'data-user': m.user_id,
    }, avatar(m.user_id, m.username, m.status), h('span', {}, m.username,
      m.user_id === g.guild.owner_id ? h('span', { title: 'Server owner', class: 'owner' }, icon('crown', 14), h('span', { class: 'visually-hidden' }, ' (owner)')) : null,
      m.user_id === state.me.id ? h('span', { class: 'muted' }, ' (you)') : null),
    h('span', { class: 'visually-hidden' }, `, ${LABEL[m.status]}`)))),
  ] : [];
  $('members').replaceChildren(...group('Online', online), ...group('Offline', offline));
}
