// User settings in the settings panel: display name, avatar (uploaded; the server crops it to a
// square), password change (which ends every login: this page signs in afresh with the new
// token) and logging out everywhere.

import { api, del, getToken, patch, post, setToken } from './api.js';
import { $, avatar, h, toast } from './dom.js';
import { confirm } from './dialog.js';
import { apply, nameOf, state } from './state.js';

/** `session`: {stop()} ends this page's gateway and voice before the login goes. */
export function openProfile(session) {
  const panel = $('panel');
  const body = h('section', { class: 'panel-body' });
  const render = () => body.replaceChildren(...sections(session, render));
  panel.replaceChildren(h('header', {}, h('h2', { id: 'panel-title' }, 'My account'),
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Close settings', onclick: () => panel.close() }, '✕')), body);
  render();
  const back = document.activeElement;
  panel.onclose = () => back?.focus?.();
  panel.showModal();
  $('display-name')?.focus();
}

/** Applies the user the server answered with, as USER_UPDATE would. */
function updated(me) {
  apply('USER_UPDATE', me);
  toast('Saved');
}

function sections(session, render) {
  const me = state.me;
  const name = h('input', { id: 'display-name', value: me.display_name ?? '', maxlength: 32, placeholder: me.username });
  const file = h('input', { id: 'avatar-file', type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp' });
  file.onchange = async () => {
    const f = file.files[0];
    if (!f) return;
    try {
      const res = await fetch('/api/users/@me/avatar', {
        method: 'PUT', headers: { Authorization: `Bearer ${getToken()}`, 'Content-Type': f.type || 'application/octet-stream' }, body: f,
      });
      const data = await res.json();
      if (!res.ok) throw new Error(data.message);
      updated(data);
      render();
    } catch (e) { toast(e.message); }
  };
  const current = h('input', { id: 'password-current', type: 'password', autocomplete: 'current-password', required: true });
  const next = h('input', { id: 'password-new', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  return [
    h('form', {
      class: 'row', onsubmit: async (e) => {
        e.preventDefault();
        try { updated(await patch('/users/@me', { display_name: name.value.trim() || null })); } catch (err) { toast(err.message); }
      },
    }, h('label', { for: 'display-name' }, 'Display name'), name, h('button', { class: 'small primary' }, 'Save'),
    h('span', { class: 'muted' }, `Username: ${me.username}`)),
    h('h3', {}, 'Avatar'),
    h('div', { class: 'row avatar-preview' }, avatar(me.id, nameOf(me), null, me.avatar), h('label', { for: 'avatar-file' }, 'Upload an image'), file,
      me.avatar ? h('button', {
        class: 'small', onclick: async () => {
          try { updated(await del('/users/@me/avatar')); render(); } catch (e) { toast(e.message); }
        },
      }, 'Remove') : null),
    h('h3', {}, 'Password'),
    h('form', {
      class: 'row', onsubmit: async (e) => {
        e.preventDefault();
        // Every login ends with the change, this page's too: sign in again with the new token.
        session.stop();
        try {
          const s = await api('POST', '/auth/password', { password: current.value, new_password: next.value });
          setToken(s.token);
          location.reload();
        } catch (err) {
          toast(err.message);
          location.reload();
        }
      },
    }, h('label', { for: 'password-current' }, 'Current'), current, h('label', { for: 'password-new' }, 'New'), next,
    h('button', { class: 'small primary' }, 'Change password')),
    h('p', { class: 'muted hint' }, 'Changing it signs you out on every other device.'),
    h('h3', {}, 'Sessions'),
    h('button', {
      class: 'danger', id: 'logout-all', onclick: async () => {
        if (!await confirm({ title: 'Log out everywhere?', text: 'Every device signed in to this account is signed out, this one too.', ok: 'Log out everywhere' })) return;
        session.stop();
        await post('/auth/logout-all').catch(() => {});
        setToken(null);
        location.reload();
      },
    }, 'Log out everywhere'),
  ];
}
