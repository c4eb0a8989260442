// Reactions under a message (each emoji with its count, pressed when it is yours; a click adds or
// takes back yours) and the React button's small picker of common emoji.

import { del, put } from './api.js';
import { h, toast } from './dom.js';
import { state, username } from './state.js';

const QUICK = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

export function reactionsView(m) {
  if (!m.reactions?.length) return null;
  return h('div', { class: 'reactions', role: 'group', 'aria-label': 'Reactions' }, ...m.reactions.map((r) => {
    const mine = r.users.includes(state.me.id);
    const who = r.users.map((u) => username(u)).join(', ');
    return h('button', {
      type: 'button', class: 'reaction', 'aria-pressed': String(mine), title: who,
      'aria-label': `${r.emoji} ${r.count}, from ${who}${mine ? ' (you: click to take back)' : ''}`,
      onclick: () => toggle(m, r.emoji, mine),
    }, `${r.emoji} ${r.count}`);
  }));
}

async function toggle(m, emoji, mine) {
  const path = `/channels/${m.channel_id}/messages/${m.id}/reactions/${encodeURIComponent(emoji)}/@me`;
  try {
    await (mine ? del(path) : put(path));
  } catch (e) { toast(e.message); }
}

/** The React action: a row of common emoji that closes once one is picked (or on Escape). */
export function reactButton(m) {
  const b = h('button', { class: 'small', type: 'button', 'aria-haspopup': 'true', 'aria-expanded': 'false' }, 'React');
  b.onclick = () => {
    const open = b.parentElement.querySelector('.picker');
    if (open) return close(open, b);
    const picker = h('div', { class: 'picker', role: 'menu', 'aria-label': 'Pick a reaction' }, ...QUICK.map((e) =>
      h('button', { type: 'button', role: 'menuitem', 'aria-label': `React with ${e}`, onclick: () => { close(picker, b); toggle(m, e, false); } }, e)));
    picker.onkeydown = (ev) => { if (ev.key === 'Escape') { ev.stopPropagation(); close(picker, b); } };
    b.after(picker);
    b.setAttribute('aria-expanded', 'true');
    picker.querySelector('button').focus();
  };
  return b;
}

function close(picker, b) {
  picker.remove();
  b.setAttribute('aria-expanded', 'false');
  b.focus();
}

/** Applies MESSAGE_REACTION_ADD / _REMOVE to a loaded message. */
export function applyReaction(m, d, added) {
  m.reactions ??= [];
  let r = m.reactions.find((x) => x.emoji === d.emoji);
  if (added) {
    if (!r) m.reactions.push(r = { emoji: d.emoji, count: 0, users: [] });
    if (r.users.includes(d.user_id)) return;
    r.count++;
    r.users.push(d.user_id);
  } else if (r) {
    r.count = Math.max(0, r.count - 1);
    r.users = r.users.filter((u) => u !== d.user_id);
    if (!r.count) m.reactions = m.reactions.filter((x) => x !== r);
  }
}
