// Tiny DOM helpers: no framework, so views build elements with h() and update them in place.

/** h('button', {class: 'x', onclick: f}, 'text', child) → element. Attributes whose value is
 *  null/false are skipped; on* values become listeners; children are strings or nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    // Through CSSOM: the Content-Security-Policy refuses style attributes.
    else if (k === 'style') Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) el.append(c);
  }
  return el;
}

export const $ = (id) => document.getElementById(id);

// Icons as inline SVG paths (Material Design shapes): no icon font, no emoji font needed.
const ICONS = {
  speaker: 'M3 9v6h4l5 5V4L7 9H3zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z',
  crown: 'M5 16 3 5l5.5 5L12 4l3.5 6L21 5l-2 11H5zm14 3c0 .6-.4 1-1 1H6c-.6 0-1-.4-1-1v-1h14v1z',
  micOff: 'M19 11h-1.7c0 .74-.16 1.43-.43 2.05l1.23 1.23c.56-.98.9-2.09.9-3.28zm-4.02.17c0-.06.02-.11.02-.17V5c0-1.66-1.34-3-3-3S9 3.34 9 5v.18l5.98 5.99zM4.27 3 3 4.27l6.01 6.01V11c0 1.66 1.33 3 2.99 3 .22 0 .44-.03.65-.08l1.66 1.66c-.71.33-1.5.52-2.31.52-2.76 0-5.3-2.1-5.3-5.1H5c0 3.41 2.72 6.23 6 6.72V21h2v-3.28c.91-.13 1.77-.45 2.54-.9L19.73 21 21 19.73 4.27 3z',
  chat: 'M20 2H4c-1.1 0-2 .9-2 2v18l4-4h14c1.1 0 2-.9 2-2V4c0-1.1-.9-2-2-2z',
  chevron: 'M16.59 8.59 12 13.17 7.41 8.59 6 10l6 6 6-6z',
  live: 'M12 10a2 2 0 1 0 0 4 2 2 0 0 0 0-4zm-4.2-1.8-1.4-1.4a7.5 7.5 0 0 0 0 10.4l1.4-1.4a5.5 5.5 0 0 1 0-7.6zm8.4 0a5.5 5.5 0 0 1 0 7.6l1.4 1.4a7.5 7.5 0 0 0 0-10.4l-1.4 1.4zM5 5.1 3.6 3.7a11.5 11.5 0 0 0 0 16.6L5 18.9a9.5 9.5 0 0 1 0-13.8zm14-1.4L17.6 5.1a9.5 9.5 0 0 1 0 13.8l1.4 1.4a11.5 11.5 0 0 0 0-16.6z',
  deaf: 'M12 4c3.87 0 7 3.13 7 7v2h-2.92L21 17.92V11c0-4.97-4.03-9-9-9-1.95 0-3.76.62-5.23 1.68l1.44 1.44C9.3 4.41 10.6 4 12 4zM2.27 1.72 1 3l3.33 3.32C3.49 7.68 3 9.29 3 11v7c0 1.66 1.34 3 3 3h3v-8H5v-2c0-1.17.29-2.26.79-3.22L15 17v4h3c.3 0 .59-.06.86-.14L21 23l1.27-1.27-20-20.01z',
  camera: 'M17 10.5V7c0-.55-.45-1-1-1H4c-.55 0-1 .45-1 1v10c0 .55.45 1 1 1h12c.55 0 1-.45 1-1v-3.5l4 4v-11l-4 4z',
};

/** A decorative icon (the control carrying it has the accessible name). */
export function icon(name, size = 16) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  for (const [k, v] of Object.entries({ viewBox: '0 0 24 24', width: size, height: size, fill: 'currentColor', 'aria-hidden': 'true', class: 'icon' })) svg.setAttribute(k, v);
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

/** A stable colour per user, so avatars are recognisable without images. */
export function colour(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${n % 360} 45% 42%)`;
}

export function initials(name) {
  return (name || '?').replace(/[^A-Za-z0-9]/g, '').slice(0, 2).toUpperCase() || '?';
}

/** A round avatar: the user's image when they set one (`hash`), else their initials. */
export function avatar(id, name, status, hash) {
  return h('span', { class: 'avatar', style: { background: colour(id) }, 'aria-hidden': 'true' },
    hash ? h('img', { src: `/api/avatars/${id}/${hash}.png`, alt: '', loading: 'lazy' }) : initials(name),
    status ? h('span', { class: `dot ${status}` }) : null);
}

let toastTimer;
/** A short message in the polite live region at the bottom of the page. */
export function toast(text, ms = 4000) {
  const t = $('toast');
  t.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.textContent = ''; }, ms);
}

// Snowflake ids carry their creation time: 41 bits of ms since 2026-01-01 above 22 other bits.
const EPOCH = Date.UTC(2026, 0, 1);
export function idTime(id) {
  return new Date(Number(BigInt(id) >> 22n) + EPOCH);
}

/** Snowflake ids compare as numbers, not strings ("9" < "10"). */
export function idCmp(a, b) {
  const x = BigInt(a), y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
