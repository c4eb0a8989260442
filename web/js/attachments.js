// Files in messages: the composer's attach button and the list of files chosen, and how a
// message's attachments look (images as previews at their size, opening the original; other
// files as download links with their size).

import { $, h, toast } from './dom.js';

/** Files chosen for the next message. */
let chosen = [];
const MAX_FILES = 10;

export function initAttachments() {
  const input = $('composer-files');
  $('composer-attach').onclick = () => input.click();
  input.onchange = () => {
    add([...input.files]);
    input.value = '';
  };
  // Pasted or dropped files join the message too.
  $('composer-input').addEventListener('paste', (e) => { if (e.clipboardData?.files.length) add([...e.clipboardData.files]); });
  $('chat').addEventListener('dragover', (e) => e.preventDefault());
  $('chat').addEventListener('drop', (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    add([...e.dataTransfer.files]);
  });
}

function add(files) {
  chosen = [...chosen, ...files].slice(0, MAX_FILES);
  if (files.length && chosen.length === MAX_FILES) toast(`At most ${MAX_FILES} files per message`);
  renderChosen();
}

function renderChosen() {
  $('composer-chosen').hidden = !chosen.length;
  $('composer-chosen').replaceChildren(...chosen.map((f, i) => h('li', {}, `${f.name} (${size(f.size)})`,
    h('button', { type: 'button', class: 'icon small', 'aria-label': `Remove ${f.name}`, onclick: () => { chosen.splice(i, 1); renderChosen(); } }, '×'))));
}

/** The files chosen, taken for sending (and cleared). */
export function takeFiles() {
  const files = chosen;
  chosen = [];
  renderChosen();
  return files;
}

/** Puts files back after a failed send. */
export function restoreFiles(files) {
  chosen = [...files, ...chosen].slice(0, MAX_FILES);
  renderChosen();
}

export function size(n) {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** A message's attachments. */
export function attachmentsView(list = []) {
  if (!list.length) return null;
  return h('div', { class: 'attachments' }, ...list.map((a) => {
    if (a.content_type.startsWith('image/') && a.thumbnail_url) {
      // Sized before it loads, so the history does not jump.
      const scale = Math.min(1, 320 / Math.max(a.width || 1, a.height || 1));
      const img = h('img', { src: a.thumbnail_url, alt: a.filename, loading: 'lazy', width: Math.round((a.width || 320) * scale), height: Math.round((a.height || 320) * scale) });
      return h('a', { class: 'attachment image', href: a.url, target: '_blank', rel: 'noopener', title: `${a.filename} (${a.width}×${a.height})` }, img);
    }
    return h('a', { class: 'attachment file', href: a.url, download: a.filename }, `📎 ${a.filename}`, h('span', { class: 'muted' }, ` ${size(a.size)}`));
  }));
}
