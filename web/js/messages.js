// A text channel: history with scroll-back paging, the unread divider, mention highlight, send,
// edit and delete own messages, report others', and who is typing.

import { del, get, patch, post, upload } from './api.js';
import { attachmentsView, initAttachments, restoreFiles, takeFiles } from './attachments.js';
import { $, h, idCmp, idTime, toast } from './dom.js';
import { ask, confirm } from './dialog.js';
import { render } from './markdown.js';
import { reactButton, reactionsView } from './reactions.js';
import { PERM, can, channel, dmTitle, emit, guild, markRead, on, readsOf, state, username } from './state.js';

const PAGE = 50;
let unreadAfter = null; // the divider goes before the first message newer than this id
let lastTyping = 0;
let ackTimer;
let pendingAck = null;
let stuck = true; // the reader was at the newest message when the history last scrolled

export function initMessages() {
  initAttachments();
  $('composer').onsubmit = (e) => { e.preventDefault(); send(); };
  const input = $('composer-input');
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
    // As in Discord: Up in an empty box edits your last message.
    if (e.key === 'ArrowUp' && !input.value) {
      const mine = history()?.list.filter((m) => m.author_id === state.me.id).at(-1);
      if (mine) { e.preventDefault(); startEdit(mine); }
    }
  });
  input.addEventListener('input', () => {
    input.style.height = 'auto';
    input.style.height = `${input.scrollHeight}px`;
    if (input.value.trim() && Date.now() - lastTyping > 8000) {
      lastTyping = Date.now();
      post(`/channels/${state.channelId}/typing`).catch(() => {});
    }
  });
  $('load-older').onclick = loadOlder;
  $('history').addEventListener('keydown', moveBetweenMessages);
  $('history').addEventListener('scroll', () => {
    stuck = atBottom();
    if ($('history').scrollTop < 150) loadOlder();
    if (atBottom()) ack();
  });
  // The history's height changes under the reader (the call dock above it opens or collapses, a
  // phone's keyboard appears): whoever was reading the newest messages keeps seeing them.
  new ResizeObserver(() => { if (stuck) scrollToBottom(); }).observe($('history'));
  document.addEventListener('visibilitychange', ack);
  on('messages', (ev) => { if (ev.channelId === state.channelId) changed(ev); });
  on('typing', (c) => { if (c === state.channelId) renderTyping(); });
  setInterval(renderTyping, 2000);
}

const history = (id = state.channelId) => state.messages.get(id);
const atBottom = () => { const el = $('history'); return el.scrollHeight - el.scrollTop - el.clientHeight < 40; };
const scrollToBottom = () => { const el = $('history'); el.scrollTop = el.scrollHeight; stuck = true; };

/** Shows the current (text) channel, loading its newest page the first time. */
export async function openChannel() {
  const id = state.channelId;
  const c = channel(id);
  $('channel-title').textContent = c.kind === 'dm' ? `@ ${dmTitle(c)}` : `# ${c.name}`;
  composerHint(c);
  const read = readsOf(c)?.get(id);
  unreadAfter = read?.unread_count > 0 ? read.last_read_id : null;
  let h = history(id);
  if (!h?.loaded) {
    $('messages').replaceChildren(); // no stale channel shown while loading
    try {
      const page = await get(`/channels/${id}/messages?limit=${PAGE}`);
      h = { list: page.reverse(), more: page.length === PAGE, loaded: true };
      state.messages.set(id, h);
    } catch (e) { toast(e.message); return; }
    if (state.channelId !== id) return;
  }
  renderAll();
  const divider = $('messages').querySelector('.divider');
  if (divider) {
    divider.scrollIntoView({ block: 'center' });
    stuck = atBottom();
  } else scrollToBottom();
  // At the top already (a short page, or the divider near the start): no scroll event will come.
  if ($('history').scrollTop < 150) loadOlder();
  ack();
}

async function loadOlder() {
  const id = state.channelId;
  const h = history(id);
  if (!h?.more || h.loading || !h.list.length) return;
  h.loading = true;
  try {
    const page = await get(`/channels/${id}/messages?limit=${PAGE}&before=${h.list[0].id}`);
    h.more = page.length === PAGE;
    h.list.unshift(...page.reverse().filter((m) => !h.list.some((x) => x.id === m.id)));
    if (state.channelId !== id) return;
    // Keep what the reader was looking at in place while older messages appear above it.
    const el = $('history');
    const fromBottom = el.scrollHeight - el.scrollTop;
    renderAll();
    el.scrollTop = el.scrollHeight - fromBottom;
  } catch (e) { toast(e.message); } finally { h.loading = false; }
}

function renderAll() {
  const h = history();
  $('load-older').hidden = !h.more;
  const items = [];
  let dividerDone = !unreadAfter;
  for (const m of h.list) {
    if (!dividerDone && idCmp(m.id, unreadAfter) > 0 && m.author_id !== state.me.id) {
      items.push(divider());
      dividerDone = true;
    }
    items.push(item(m, items.at(-1)?.classList.contains('divider') ? null : prevOf(h.list, m)));
  }
  // A redraw is not news: keep the live region from reading the whole history out.
  const list = $('messages');
  list.setAttribute('aria-live', 'off');
  list.replaceChildren(...items);
  requestAnimationFrame(() => list.setAttribute('aria-live', 'polite'));
  renderTyping();
}

/** The message `m` continues (same author, within 5 minutes): it is shown without a header. */
function prevOf(list, m) {
  const prev = list[list.indexOf(m) - 1];
  return prev && prev.author_id === m.author_id && idTime(m.id) - idTime(prev.id) < 5 * 60000 ? prev : null;
}

function keepingScroll(fn) {
  const el = $('history');
  const bottom = atBottom();
  const top = el.scrollTop;
  fn();
  if (bottom) scrollToBottom(); else el.scrollTop = top;
}

function divider() {
  return Object.assign(document.createElement('li'), { className: 'divider', role: 'separator', textContent: 'New messages' });
}

function changed({ created, updated, deleted }) {
  const h = history();
  if (!h?.loaded) return;
  if (created) {
    const m = h.list.find((x) => x.id === created);
    if (!m || document.getElementById(`m-${m.id}`)) return;
    const stick = atBottom() || m.author_id === state.me.id;
    const next = h.list[h.list.indexOf(m) + 1];
    if (next) return keepingScroll(renderAll); // arrived out of order: regroup everything
    $('messages').append(item(m, prevOf(h.list, m)));
    if (stick) scrollToBottom();
    if (stick) ack();
  } else if (updated) {
    const m = h.list.find((x) => x.id === updated);
    const old = document.getElementById(`m-${updated}`);
    if (m && old && !old.querySelector('textarea')) old.replaceWith(item(m, old.classList.contains('grouped') ? prevOf(h.list, m) : null));
  } else if (deleted && document.getElementById(`m-${deleted}`)) {
    keepingScroll(renderAll); // the next message may now need its author line
  }
}

/** Acknowledges the newest message once the reader can see it; debounced, since messages come
 *  in bursts. A pending ack is sent at once when the reader moves to another channel. */
function ack() {
  const id = state.channelId;
  if (!id || document.visibilityState !== 'visible' || $('chat').hidden || !atBottom()) return;
  clearTimeout(ackTimer);
  pendingAck = id;
  ackTimer = setTimeout(flushAck, 300);
}

export function flushAck() {
  clearTimeout(ackTimer);
  const id = pendingAck;
  pendingAck = null;
  const last = id && history(id)?.list.at(-1);
  if (!last) return;
  const r = readsOf(channel(id))?.get(id);
  if (r && r.unread_count === 0 && idCmp(r.last_read_id, last.id) >= 0) return;
  markRead(id, last.id);
  post(`/channels/${id}/messages/${last.id}/ack`).catch(() => {});
}

/** Message text with its markdown, and `<@id>` mentions shown as @name. Never HTML. */
function content(text) {
  return render(text, (id) => h('span', { class: 'at' }, `@${username(id)}`));
}

/** Whether I may delete others' messages where `m` was sent (never in a DM). */
function moderates(m) {
  const gid = channel(m.channel_id)?.guild_id;
  return Boolean(gid) && can(PERM.MANAGE_MESSAGES, guild(gid));
}

function item(m, continues = null) {
  const mine = m.author_id === state.me.id;
  const t = idTime(m.id);
  const name = username(m.author_id);
  const mentioned = m.mentions?.includes(state.me.id);
  // Focusable (not a tab stop): arrow keys move between messages, and a focused message shows
  // its actions, which Tab then reaches; a tap on a phone focuses it too.
  return h('li', { id: `m-${m.id}`, class: `msg${mentioned ? ' mention' : ''}${continues ? ' grouped' : ''}`, 'data-author': name, tabindex: '-1' },
    h('header', { class: continues ? 'visually-hidden' : null }, h('span', { class: 'author' }, name),
      h('time', { datetime: t.toISOString(), title: t.toLocaleString() },
        t.toDateString() === new Date().toDateString() ? t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : t.toLocaleString())),
    m.reply_to ? replyLine(m) : null,
    h('div', { class: 'content' }, content(m.content), m.edited_at ? h('span', { class: 'edited' }, ' (edited)') : null),
    attachmentsView(m.attachments),
    reactionsView(m),
    h('div', { class: 'actions', role: 'group', 'aria-label': 'Message actions' },
      h('button', { class: 'small', onclick: () => startReply(m) }, 'Reply'),
      reactButton(m),
      mine ? h('button', { class: 'small', onclick: () => startEdit(m) }, 'Edit') : null,
      mine || moderates(m) ? h('button', { class: 'small', onclick: () => remove(m) }, 'Delete') : null,
      mine || channel()?.kind === 'dm' ? null : h('button', { class: 'small', onclick: () => report(m) }, 'Report')));
}

/** The message being answered by the next one sent. */
let replyTo = null;

function startReply(m) {
  replyTo = m;
  const bar = $('composer-reply');
  bar.hidden = false;
  bar.replaceChildren(`Replying to ${username(m.author_id)}`, h('button', {
    type: 'button', class: 'icon small', 'aria-label': 'Cancel the reply', onclick: () => cancelReply(),
  }, '×'));
  $('composer-input').focus();
}

function cancelReply() {
  replyTo = null;
  $('composer-reply').hidden = true;
}

/** "↪ name: the start of what they said", jumping to it when it is loaded. */
function replyLine(m) {
  const to = history(m.channel_id)?.list.find((x) => x.id === m.reply_to);
  const text = to ? `${username(to.author_id)}: ${to.content.slice(0, 80) || 'a file'}` : 'a message';
  return h('button', {
    type: 'button', class: 'reply-ref', 'aria-label': `In reply to ${text}`,
    onclick: () => { const el = document.getElementById(`m-${m.reply_to}`); el?.scrollIntoView({ block: 'center' }); el?.focus(); },
  }, `↪ ${text}`);
}

/** Up/Down (and Home/End) move focus between messages; Escape goes back to the composer. */
function moveBetweenMessages(e) {
  const all = [...$('messages').querySelectorAll('.msg')];
  if (!all.length || e.target.closest('textarea, input')) return;
  const at = all.indexOf(e.target.closest('.msg'));
  const to = { ArrowUp: at < 0 ? all.length - 1 : at - 1, ArrowDown: at < 0 ? -1 : at + 1, Home: 0, End: all.length - 1 }[e.key];
  if (e.key === 'Escape') {
    e.preventDefault();
    return $('composer-input').focus();
  }
  if (to === undefined || !all[to]) return;
  e.preventDefault();
  all[to].focus();
  all[to].scrollIntoView({ block: 'nearest' });
}

/** `@name` of a guild member becomes `<@id>`, the form the server records as a mention. */
function withMentions(text) {
  const c = channel();
  const people = c?.kind === 'dm' ? c.recipients.map((u) => ({ username: u.username, user_id: u.id })) : [...(guild()?.members.values() ?? [])];
  const byName = new Map(people.map((m) => [m.username.toLowerCase(), m.user_id]));
  return text.replace(/(^|\s)@([A-Za-z0-9_.-]{2,32})/g, (all, pre, name) => {
    const id = byName.get(name.toLowerCase());
    return id ? `${pre}<@${id}>` : all;
  });
}

/** The composer's placeholder: the channel, its slow mode, and while one is running, the wait. */
export function composerHint(c = channel(state.channelId)) {
  if (!c) return;
  const wait = Math.ceil((slowUntil.get(c.id) ?? 0) - Date.now() / 1000);
  const slow = c.slow_mode_secs > 0 ? ` (slow mode: one message every ${c.slow_mode_secs} s)` : '';
  const where = c.kind === 'dm' ? `@${dmTitle(c)}` : `#${c.name}`;
  $('composer-input').placeholder = wait > 0 ? `Slow mode: you can send again in ${wait} s` : `Message ${where}${slow}`;
  if (wait > 0) setTimeout(() => composerHint(channel(state.channelId)), 1000);
}

/** Channel id → when (unix seconds) the server lets this user post there again. */
const slowUntil = new Map();

async function send() {
  const input = $('composer-input');
  const text = input.value.trim();
  const files = takeFiles();
  if (!text && !files.length) return;
  const reply = replyTo;
  cancelReply();
  input.value = '';
  input.style.height = 'auto';
  lastTyping = 0;
  const channelId = state.channelId;
  try {
    let m;
    if (files.length) {
      const form = new FormData();
      form.append('content', withMentions(text));
      if (reply) form.append('reply_to', reply.id);
      for (const f of files) form.append('files', f, f.name);
      m = await upload(`/channels/${channelId}/messages`, form);
    } else {
      m = await post(`/channels/${channelId}/messages`, { content: withMentions(text), ...(reply ? { reply_to: reply.id } : {}) });
    }
    // The gateway brings it too; the answer shows it even while the gateway reconnects.
    const h = history(channelId);
    if (h?.loaded && !h.list.some((x) => x.id === m.id)) {
      h.list.push(m);
      h.list.sort((a, b) => idCmp(a.id, b.id));
      emit('messages', { channelId, created: m.id });
    }
  } catch (e) {
    input.value = text;
    restoreFiles(files);
    if (reply) startReply(reply);
    if (e.status === 429 && e.retryAfter) {
      slowUntil.set(channelId, Date.now() / 1000 + e.retryAfter);
      composerHint();
    }
    toast(`Not sent: ${e.message}`);
  }
}

function startEdit(m) {
  const li = document.getElementById(`m-${m.id}`);
  if (!li) return;
  const box = h('textarea', { 'aria-label': 'Edit message', maxlength: 2000 });
  box.value = m.content;
  const done = () => li.replaceWith(item(m, li.classList.contains('grouped') ? m : null));
  const save = async () => {
    const text = box.value.trim();
    if (!text || text === m.content) return done();
    try {
      Object.assign(m, await patch(`/channels/${m.channel_id}/messages/${m.id}`, { content: withMentions(text) }));
      done();
    } catch (e) { toast(e.message); }
  };
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); save(); }
    if (e.key === 'Escape') { e.preventDefault(); done(); $('composer-input').focus(); }
  });
  li.querySelector('.content').replaceWith(box,
    h('p', { class: 'muted' }, 'Enter to save, Escape to cancel ', h('button', { class: 'small', onclick: save }, 'Save')));
  li.querySelector('.actions')?.remove();
  box.focus();
}

async function remove(m) {
  if (!await confirm({ title: 'Delete message', text: `Delete “${m.content.slice(0, 80)}”? This cannot be undone.` })) return;
  try { await del(`/channels/${m.channel_id}/messages/${m.id}`); } catch (e) { toast(e.message); }
}

async function report(m) {
  const reason = await ask({ title: 'Report message', label: `Why report ${username(m.author_id)}'s message?`, ok: 'Report', max: 500 });
  if (!reason) return;
  try {
    await post(`/channels/${m.channel_id}/messages/${m.id}/reports`, { reason });
    toast('Reported. The server’s moderators will review it.');
  } catch (e) { toast(e.message); }
}

function renderTyping() {
  const typing = state.typing.get(state.channelId);
  const now = Date.now();
  const names = [...(typing?.entries() ?? [])].filter(([, until]) => until > now).map(([u]) => username(u));
  $('typing').textContent = names.length === 0 ? '' :
    names.length === 1 ? `${names[0]} is typing…` :
      names.length < 4 ? `${names.join(', ')} are typing…` : 'Several people are typing…';
}
