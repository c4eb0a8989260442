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

/** A stable colour per user, so avatars are recognisable without images. */
export function colour(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${n % 360} 45% 42%)`;
}

export function initials(name) {
  return (name || '?').replace(/[^A-Za-z0-9]/g, '').slice(0, 2).toUpperCase() || '?';
}

export function avatar(id, name, status) {
  return h('span', { class: 'avatar', style: { background: colour(id) }, 'aria-hidden': 'true' },
    initials(name), status ? h('span', { class: `dot ${status}` }) : null);
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
