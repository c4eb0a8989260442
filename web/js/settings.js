// Server settings: one panel with a tab per concern the caller may manage — Overview (rename,
// channels, delete), Roles (permissions as checkboxes), Invites (limits, uses, revoke), and the
// moderation tabs from moderation.js (members, bans, reports, audit log). Every tab reads the
// server afresh; the server checks every action again.

import { del, get, patch, post } from './api.js';
import { $, h, toast } from './dom.js';
import { ask, confirm } from './dialog.js';
import { auditTab, bansTab, membersTab, reportsTab } from './moderation.js';
import { DMS, PERM, apply, can, guild, state } from './state.js';

/** The role editor's permissions, in the order shown. */
const PERMS = [
  ['ADMINISTRATOR', 'Administrator (everything)'], ['MANAGE_GUILD', 'Manage server and invites'],
  ['MANAGE_ROLES', 'Manage roles'], ['MANAGE_CHANNELS', 'Manage channels'], ['KICK_MEMBERS', 'Kick members'],
  ['BAN_MEMBERS', 'Ban members'], ['MODERATE_MEMBERS', 'Time out members'], ['MANAGE_MESSAGES', 'Manage messages and reports'],
  ['MUTE_MEMBERS', 'Mute members in voice'], ['VIEW_AUDIT_LOG', 'View the audit log'], ['CREATE_INVITE', 'Create invites'],
];

const TABS = [
  { id: 'overview', label: 'Overview', show: (g) => can(PERM.MANAGE_GUILD, g) || can(PERM.MANAGE_CHANNELS, g), render: overviewTab },
  { id: 'roles', label: 'Roles', show: (g) => can(PERM.MANAGE_ROLES, g), render: rolesTab },
  { id: 'members', label: 'Members', show: (g) => [PERM.KICK_MEMBERS, PERM.BAN_MEMBERS, PERM.MODERATE_MEMBERS, PERM.MANAGE_ROLES].some((p) => can(p, g)), render: membersTab },
  { id: 'invites', label: 'Invites', show: (g) => can(PERM.MANAGE_GUILD, g), render: invitesTab },
  { id: 'bans', label: 'Bans', show: (g) => can(PERM.BAN_MEMBERS, g), render: bansTab },
  { id: 'reports', label: 'Reports', show: (g) => can(PERM.MANAGE_MESSAGES, g), render: reportsTab },
  { id: 'audit', label: 'Audit log', show: (g) => can(PERM.VIEW_AUDIT_LOG, g), render: auditTab },
];

let nav;

/** Opens the settings of guild `id` (on tab `tab`, else the first allowed); `actions` as the sidebar's. */
export function openSettings(id, actions, tab, focusUser) {
  nav = actions;
  const g = guild(id);
  if (!g) return;
  const tabs = TABS.filter((t) => t.show(g));
  if (!tabs.length) return toast('You cannot manage this server');
  const panel = $('panel');
  const body = h('section', { id: 'panel-body', class: 'panel-body', role: 'tabpanel' });
  const select = async (t) => {
    for (const b of panel.querySelectorAll('[role=tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === t.id));
    body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      await t.render(body, g, { focusUser, reopen: () => select(t), close: () => panel.close(), nav });
    } catch (e) { body.replaceChildren(h('p', { class: 'error' }, e.message)); }
  };
  const list = h('div', { role: 'tablist', 'aria-label': 'Settings' }, tabs.map((t) => h('button', {
    type: 'button', role: 'tab', class: 'tab', 'data-tab': t.id, onclick: () => select(t),
  }, t.label)));
  panel.replaceChildren(h('header', {}, h('h2', { id: 'panel-title' }, `${g.guild.name} — settings`),
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Close settings', onclick: () => panel.close() }, '✕')), list, body);
  const back = document.activeElement;
  panel.onclose = () => back?.focus?.();
  panel.showModal();
  select(tabs.find((t) => t.id === tab) ?? tabs[0]);
  panel.querySelector('[aria-selected=true], [role=tab]')?.focus();
}

/** Runs a server call; a failure is shown, not thrown. True when it worked. */
export async function act(fn) {
  try {
    await fn();
    return true;
  } catch (e) {
    toast(e.message);
    return false;
  }
}

async function overviewTab(body, g, ctx) {
  const parts = [];
  if (can(PERM.MANAGE_GUILD, g)) {
    const name = h('input', { id: 'server-name', value: g.guild.name, maxlength: 100, required: true });
    parts.push(h('form', {
      class: 'row', onsubmit: async (e) => {
        e.preventDefault();
        if (await act(async () => apply('GUILD_UPDATE', await patch(`/guilds/${g.guild.id}`, { name: name.value.trim() })))) toast('Server renamed');
      },
    }, h('label', { for: 'server-name' }, 'Server name'), name, h('button', { class: 'primary small' }, 'Save')));
  }
  if (can(PERM.MANAGE_CHANNELS, g)) {
    parts.push(h('h3', {}, 'Channels'), h('ul', { class: 'rows', 'aria-label': 'Channels' }, g.channels.map((c) => h('li', {},
      h('span', {}, `${c.kind === 'voice' ? '🔊' : c.kind === 'live' ? '📺' : '#'} ${c.name}`),
      h('button', {
        class: 'small danger', 'aria-label': `Delete channel ${c.name}`, onclick: async () => {
          if (!await confirm({ title: `Delete #${c.name}?`, text: 'Its messages go with it. This cannot be undone.' })) return;
          if (await act(async () => { await del(`/channels/${c.id}`); apply('CHANNEL_DELETE', c); })) ctx.reopen();
        },
      }, 'Delete')))));
  }
  if (g.guild.owner_id === state.me.id) {
    parts.push(h('h3', {}, 'Danger zone'), h('button', {
      class: 'danger', id: 'server-delete', onclick: async () => {
        const typed = await ask({ title: `Delete ${g.guild.name}?`, label: 'Everything in it goes. Type the server’s name to confirm', ok: 'Delete server' });
        if (typed === null) return;
        if (typed !== g.guild.name) return toast('The name does not match');
        state.leaving.add(g.guild.id);
        if (await act(() => del(`/guilds/${g.guild.id}`))) {
          ctx.close();
          apply('GUILD_DELETE', { id: g.guild.id });
          ctx.nav.selectGuild(state.guilds.keys().next().value ?? DMS);
        }
      },
    }, 'Delete server'));
  }
  body.replaceChildren(...parts);
}

/** The bits of a `permissions` string that are set, by name. */
const has = (perms, name) => (BigInt(perms) & PERM[name]) !== 0n;

async function rolesTab(body, g, ctx) {
  const roles = await get(`/guilds/${g.guild.id}/roles`);
  const mine = g.guild.owner_id === state.me.id ? Infinity : g.rank;
  const editor = (r) => {
    const everyone = r.id === g.guild.id;
    const locked = r.position >= mine;
    const boxes = PERMS.map(([name, label]) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name, checked: has(r.permissions, name), disabled: locked || !can(PERM[name], g) }), label));
    const name = h('input', { value: r.name, maxlength: 100, disabled: everyone || locked, 'aria-label': 'Role name' });
    const position = everyone ? null : h('input', { type: 'number', min: 1, value: r.position, disabled: locked, 'aria-label': 'Position', class: 'narrow' });
    return h('li', { class: 'role', 'data-role': r.id }, h('details', {},
      h('summary', {}, r.name, locked ? h('span', { class: 'muted' }, ' (at or above yours)') : null),
      h('form', {
        onsubmit: async (e) => {
          e.preventDefault();
          let bits = 0n;
          for (const b of e.target.querySelectorAll('input[type=checkbox]')) if (b.checked) bits |= PERM[b.name];
          const change = { permissions: bits.toString() };
          if (!everyone) Object.assign(change, { name: name.value.trim(), position: Number(position.value) });
          if (await act(() => patch(`/guilds/${g.guild.id}/roles/${r.id}`, change))) { toast('Role saved'); ctx.reopen(); }
        },
      }, everyone ? null : h('div', { class: 'row' }, name, position), h('div', { class: 'checks' }, boxes),
      locked ? null : h('menu', {},
        everyone ? null : h('button', {
          type: 'button', class: 'small danger', onclick: async () => {
            if (!await confirm({ title: `Delete the role ${r.name}?`, text: 'Its members lose what it grants.' })) return;
            if (await act(() => del(`/guilds/${g.guild.id}/roles/${r.id}`))) ctx.reopen();
          },
        }, 'Delete'),
        h('button', { class: 'small primary' }, 'Save')))));
  };
  body.replaceChildren(
    h('button', {
      class: 'small primary', id: 'role-create', onclick: async () => {
        const name = await ask({ title: 'Create a role', label: 'Role name', ok: 'Create' });
        if (name && await act(() => post(`/guilds/${g.guild.id}/roles`, { name }))) ctx.reopen();
      },
    }, 'Create role'),
    h('p', { class: 'muted hint' }, 'Higher roles outrank lower ones: you can manage roles and members below your highest role, and grant only what you hold.'),
    h('ul', { class: 'roles', 'aria-label': 'Roles' }, roles.map(editor)));
}

const AGES = [['30 minutes', 1800], ['1 hour', 3600], ['1 day', 86400], ['7 days', 604800], ['Never', 0]];

async function invitesTab(body, g, ctx) {
  const invites = await get(`/guilds/${g.guild.id}/invites`);
  const age = h('select', { id: 'invite-age', 'aria-label': 'Expires after' }, AGES.map(([l, s]) => h('option', { value: s, selected: s === 604800 }, l)));
  const uses = h('input', { id: 'invite-uses', type: 'number', min: 0, max: 1000, value: 0, class: 'narrow', 'aria-label': 'Maximum uses (0: no limit)' });
  const now = Date.now();
  body.replaceChildren(
    h('form', {
      class: 'row', onsubmit: async (e) => {
        e.preventDefault();
        const made = await act(async () => {
          const inv = await post(`/guilds/${g.guild.id}/invites`, { max_age_secs: Number(age.value), max_uses: Number(uses.value) });
          toast(`Invite ${inv.code} created`);
        });
        if (made) ctx.reopen();
      },
    }, h('label', { for: 'invite-age' }, 'Expires after'), age, h('label', { for: 'invite-uses' }, 'Max uses (0: any)'), uses,
    h('button', { class: 'small primary' }, 'Create invite')),
    invites.length ? h('table', { class: 'invites' }, h('thead', {}, h('tr', {}, ['Code', 'Uses', 'Expires', ''].map((c) => h('th', {}, c)))),
      h('tbody', {}, invites.map((i) => {
        const expired = i.expires_at && i.expires_at <= now;
        const spent = i.max_uses && i.uses >= i.max_uses;
        return h('tr', { class: expired || spent ? 'muted' : null, 'data-code': i.code },
          h('td', {}, h('code', {}, i.code)),
          h('td', {}, `${i.uses}${i.max_uses ? ` / ${i.max_uses}` : ''}`),
          h('td', {}, expired ? 'expired' : i.expires_at ? new Date(i.expires_at).toLocaleString() : 'never'),
          h('td', {}, h('button', {
            class: 'small danger', 'aria-label': `Revoke ${i.code}`, onclick: async () => {
              if (await act(() => del(`/invites/${encodeURIComponent(i.code)}`))) ctx.reopen();
            },
          }, 'Revoke')));
      }))) : h('p', { class: 'muted' }, 'No invites yet.'));
}
