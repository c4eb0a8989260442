// The moderation tabs of the server settings: members (roles, time-out, kick, ban), bans, the
// reports queue (each report with its message in context, resolved with an action) and the audit
// log. Buttons appear for what the caller may do; the server checks again.

import { del, get, patch, post, put } from './api.js';
import { h, idTime, toast } from './dom.js';
import { ask, confirm } from './dialog.js';
import { act } from './settings.js';
import { PERM, can, state, username } from './state.js';

const TIMEOUTS = [['60 seconds', 60], ['5 minutes', 300], ['10 minutes', 600], ['1 hour', 3600], ['1 day', 86400], ['1 week', 604800]];

const when = (ms) => new Date(ms).toLocaleString();

/** Asks for a time-out length: resolves to seconds, or null. */
function askTimeout(name) {
  const pick = h('select', { id: 'timeout-length', 'aria-label': 'Length' }, TIMEOUTS.map(([l, s]) => h('option', { value: s, selected: s === 3600 }, l)));
  return ask({ title: `Time out ${name}`, label: 'Reason (optional)', optional: true, max: 512, ok: 'Time out',
    extra: { node: h('label', {}, 'For ', pick), read: () => ({ secs: Number(pick.value) }) } });
}

async function timeOut(g, m, ctx) {
  const a = await askTimeout(m.username);
  if (!a) return;
  const until = Date.now() + a.secs * 1000;
  if (await act(() => patch(`/guilds/${g.guild.id}/members/${m.user_id}`, { timeout_until: until, reason: a.value }))) ctx.reopen();
}

async function kick(g, m, ctx) {
  const reason = await ask({ title: `Kick ${m.username}?`, label: 'Reason (optional)', optional: true, max: 512, ok: 'Kick' });
  if (reason === null) return;
  if (await act(() => del(`/guilds/${g.guild.id}/members/${m.user_id}?reason=${encodeURIComponent(reason)}`))) ctx.reopen();
}

async function ban(g, m, ctx) {
  const reason = await ask({ title: `Ban ${m.username}?`, label: 'Reason (optional)', optional: true, max: 512, ok: 'Ban' });
  if (reason === null) return;
  if (await act(() => put(`/guilds/${g.guild.id}/bans/${m.user_id}`, { reason }))) ctx.reopen();
}

export async function membersTab(body, g, ctx) {
  const members = await get(`/guilds/${g.guild.id}/members`);
  const mine = g.guild.owner_id === state.me.id ? Infinity : g.rank;
  const roles = g.roles.filter((r) => r.id !== g.guild.id);
  const rank = (m) => (m.user_id === g.guild.owner_id ? Infinity
    : Math.max(0, ...m.roles.map((id) => roles.find((r) => r.id === id)?.position ?? 0)));
  const row = (m) => {
    const below = rank(m) < mine && m.user_id !== state.me.id;
    const timedOut = m.timeout_until && m.timeout_until > Date.now();
    const roleBoxes = can(PERM.MANAGE_ROLES, g) ? roles.map((r) => h('label', { class: 'check' },
      h('input', {
        type: 'checkbox', checked: m.roles.includes(r.id), disabled: r.position >= mine,
        onchange: async (e) => {
          const path = `/guilds/${g.guild.id}/members/${m.user_id}/roles/${r.id}`;
          if (!await act(() => (e.target.checked ? put(path) : del(path)))) e.target.checked = !e.target.checked;
        },
      }), r.name)) : [];
    return h('li', { class: 'member-row', 'data-user': m.user_id, id: `manage-${m.user_id}` },
      h('div', {}, h('strong', {}, m.username), m.user_id === g.guild.owner_id ? h('span', { class: 'muted' }, ' (owner)') : null,
        timedOut ? h('span', { class: 'muted' }, ` — timed out until ${when(m.timeout_until)}`) : null),
      roleBoxes.length ? h('div', { class: 'checks', 'aria-label': `Roles of ${m.username}` }, roleBoxes) : null,
      below ? h('menu', {},
        can(PERM.MODERATE_MEMBERS, g) ? (timedOut
          ? h('button', { class: 'small', onclick: async () => { if (await act(() => patch(`/guilds/${g.guild.id}/members/${m.user_id}`, { timeout_until: null }))) ctx.reopen(); } }, 'End time-out')
          : h('button', { class: 'small', onclick: () => timeOut(g, m, ctx) }, 'Time out')) : null,
        can(PERM.KICK_MEMBERS, g) ? h('button', { class: 'small danger', onclick: () => kick(g, m, ctx) }, 'Kick') : null,
        can(PERM.BAN_MEMBERS, g) ? h('button', { class: 'small danger', onclick: () => ban(g, m, ctx) }, 'Ban') : null) : null);
  };
  body.replaceChildren(h('ul', { class: 'rows members-manage', 'aria-label': 'Members' },
    members.sort((a, b) => a.username.localeCompare(b.username)).map(row)));
  if (ctx.focusUser) document.getElementById(`manage-${ctx.focusUser}`)?.scrollIntoView({ block: 'center' });
}

export async function bansTab(body, g, ctx) {
  const bans = await get(`/guilds/${g.guild.id}/bans`);
  body.replaceChildren(bans.length ? h('ul', { class: 'rows', 'aria-label': 'Bans' }, bans.map((b) => h('li', { 'data-user': b.user_id },
    h('span', {}, h('strong', {}, b.username), ` — ${b.reason || 'no reason'} (${when(b.created_at)})`),
    h('button', {
      class: 'small', onclick: async () => {
        if (await confirm({ title: `Unban ${b.username}?`, text: 'They can join again with an invite.', ok: 'Unban', danger: false })
          && await act(() => del(`/guilds/${g.guild.id}/bans/${b.user_id}`))) ctx.reopen();
      },
    }, 'Unban')))) : h('p', { class: 'muted' }, 'Nobody is banned.'));
}

/** The reported message with up to two messages either side, as they are now. */
async function context(r) {
  const path = `/channels/${r.channel_id}/messages`;
  const [before, after] = await Promise.all([get(`${path}?before=${r.message_id}&limit=2`).catch(() => []),
    get(`${path}?after=${r.message_id}&limit=2`).catch(() => [])]);
  const text = (s) => s.replace(/<@(\d+)>/g, (_, id) => `@${username(id)}`);
  const line = (m, reported) => h('li', { class: reported ? 'reported' : null },
    h('strong', {}, username(m.author_id)), ': ', text(reported ? r.message_content : m.content));
  return h('ol', { class: 'context', 'aria-label': 'The message in context' },
    [...before].reverse().map((m) => line(m)), line({ author_id: r.message_author }, true), [...after].reverse().map((m) => line(m)));
}

export async function reportsTab(body, g, ctx) {
  const reports = await get(`/guilds/${g.guild.id}/reports?status=open`);
  const resolve = async (r, action, extra = {}) => {
    if (await act(() => post(`/reports/${r.id}/resolve`, { action, ...extra }))) {
      toast(`Report resolved: ${action}`);
      ctx.reopen();
    }
  };
  const card = async (r) => {
    const stream = r.subject === 'stream';
    return h('li', { class: 'report', 'data-report': r.id },
      h('p', {}, h('strong', {}, username(r.reporter_id)), ` reported ${stream ? 'a stream' : h('strong', {}, username(r.message_author)).textContent} — “${r.reason}” (${when(r.created_at)})`),
      stream ? null : await context(r),
      h('menu', {},
        stream ? null : h('button', { class: 'small', onclick: () => { ctx.close(); ctx.nav.selectChannel(r.channel_id); } }, 'Show in channel'),
        h('button', { class: 'small', onclick: () => resolve(r, 'dismiss') }, 'Dismiss'),
        stream ? null : h('button', { class: 'small danger', onclick: () => resolve(r, 'delete') }, 'Delete message'),
        !stream && can(PERM.MODERATE_MEMBERS, g) ? h('button', { class: 'small danger', onclick: () => resolve(r, 'timeout', { timeout_secs: 3600 }) }, 'Delete + time out 1 h') : null,
        !stream && can(PERM.KICK_MEMBERS, g) ? h('button', { class: 'small danger', onclick: () => resolve(r, 'kick') }, 'Delete + kick') : null,
        !stream && can(PERM.BAN_MEMBERS, g) ? h('button', { class: 'small danger', onclick: () => resolve(r, 'ban') }, 'Delete + ban') : null));
  };
  body.replaceChildren(reports.length ? h('ul', { class: 'rows reports', 'aria-label': 'Open reports' }, await Promise.all(reports.map(card)))
    : h('p', { class: 'muted' }, 'No open reports.'));
}

const ACTIONS = {
  guild_update: 'renamed the server', channel_create: 'created a channel', channel_update: 'changed a channel', channel_delete: 'deleted a channel',
  role_create: 'created a role', role_update: 'changed a role', role_delete: 'deleted a role', member_role_update: 'changed the roles of',
  member_kick: 'kicked', member_timeout: 'timed out', member_ban_add: 'banned', member_ban_remove: 'unbanned',
  message_delete: 'deleted a message', invite_delete: 'revoked an invite', report_resolve: 'resolved a report',
};
const PEOPLE = new Set(['member_role_update', 'member_kick', 'member_timeout', 'member_ban_add', 'member_ban_remove']);

export async function auditTab(body, g) {
  const list = h('ol', { class: 'rows audit', 'aria-label': 'Audit log' });
  const more = h('button', { class: 'small', hidden: true }, 'Older entries');
  const load = async (before) => {
    const page = await get(`/guilds/${g.guild.id}/audit-log?limit=50${before ? `&before=${before}` : ''}`);
    list.append(...page.map((e) => h('li', { 'data-action': e.action },
      h('time', { class: 'muted' }, idTime(e.id).toLocaleString()), ' ', h('strong', {}, username(e.actor_id, g.guild.id)), ' ',
      ACTIONS[e.action] ?? e.action, PEOPLE.has(e.action) && e.target_id ? [' ', h('strong', {}, username(e.target_id, g.guild.id))] : null,
      e.reason ? h('span', { class: 'muted' }, ` — ${e.reason}`) : null)));
    more.hidden = page.length < 50;
    more.onclick = () => load(page.at(-1)?.id);
  };
  await load();
  body.replaceChildren(list.childElementCount ? list : h('p', { class: 'muted' }, 'Nothing yet.'), more);
}
