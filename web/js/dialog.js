// Modal questions on one native <dialog>: focus moves into it, Escape cancels, focus returns to
// where it was. Each helper resolves to the answer, or null when cancelled.

import { $, h } from './dom.js';

function open(build) {
  const dlg = $('dialog');
  const back = document.activeElement;
  return new Promise((resolve) => {
    let result = null;
    const done = (value) => { result = value; dlg.close(); };
    dlg.replaceChildren(build(done));
    dlg.onclose = () => { back?.focus?.(); resolve(result); };
    dlg.showModal();
    dlg.querySelector('[autofocus]')?.focus();
  });
}

function buttons(done, ok, danger) {
  return h('menu', {},
    h('button', { type: 'button', onclick: () => done(null) }, 'Cancel'),
    h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, ok));
}

/** A one-field form: resolves to the trimmed text (non-empty unless `optional`), or null. */
export function ask({ title, label, value = '', ok = 'OK', max = 100, extra, optional = false }) {
  return open((done) => {
    const input = h('input', { id: 'dialog-input', value, maxlength: max, required: !optional, autofocus: true, autocomplete: 'off' });
    const form = h('form', {
      onsubmit: (e) => {
        e.preventDefault();
        const v = input.value.trim();
        if (v || optional) done(extra ? { value: v, ...extra.read() } : v);
      },
    }, h('h2', {}, title), h('label', { for: 'dialog-input' }, label), input, extra?.node, buttons(done, ok));
    return form;
  });
}

/** Yes or no: resolves to true, or null. */
export function confirm({ title, text, ok = 'Delete', danger = true }) {
  return open((done) => h('form', { onsubmit: (e) => { e.preventDefault(); done(true); } },
    h('h2', {}, title), h('p', {}, text),
    h('menu', {},
      h('button', { type: 'button', onclick: () => done(null), autofocus: true }, 'Cancel'),
      h('button', { type: 'submit', class: danger ? 'danger' : 'primary' }, ok))));
}

/** Shows a value to copy (an invite code). */
export function show({ title, text, code }) {
  return open((done) => h('form', { onsubmit: (e) => { e.preventDefault(); done(true); } },
    h('h2', {}, title), h('p', {}, text), h('code', { id: 'dialog-code' }, code),
    h('menu', {},
      h('button', {
        type: 'button',
        onclick: async (e) => {
          try { await navigator.clipboard.writeText(code); e.target.textContent = 'Copied'; } catch { /* no clipboard */ }
        },
      }, 'Copy'),
      h('button', { type: 'submit', class: 'primary', autofocus: true }, 'Done'))));
}

/** Name, kind (`initialKind` preselected) and, for voice, room mode of a new channel. */
export function newChannel(initialKind = 'text') {
  const kind = h('select', { id: 'dialog-kind' },
    h('option', { value: 'text' }, 'Text'), h('option', { value: 'voice' }, 'Voice'), h('option', { value: 'live' }, 'Live stream'));
  kind.value = initialKind;
  const mode = h('select', { id: 'dialog-mode', disabled: initialKind !== 'voice' },
    h('option', { value: 'hybrid' }, 'Hybrid: audio forwarded, video composited'),
    h('option', { value: 'sfu' }, 'SFU: audio and video forwarded'),
    h('option', { value: 'mcu' }, 'MCU: audio mixed, video composited'));
  kind.onchange = () => { mode.disabled = kind.value !== 'voice'; };
  const node = h('div', {}, h('label', { for: 'dialog-kind' }, 'Kind'), kind,
    h('label', { for: 'dialog-mode' }, 'Voice mode'), mode);
  return ask({
    title: 'Create a channel', label: 'Channel name', ok: 'Create',
    extra: { node, read: () => ({ kind: kind.value, mode: kind.value === 'voice' ? mode.value : undefined }) },
  });
}
