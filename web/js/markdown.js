// Message text as Discord shows it, built from DOM nodes (never HTML, so nothing in a message can
// become markup): ```code blocks```, `code`, **bold**, *italic* or _italic_, ~~strike~~,
// ||spoilers|| (hidden until clicked), > quotes, links (http and https only, opened in a new tab
// without a referrer) and <@id> mentions (drawn by `mention`).

import { h } from './dom.js';

/** Nodes for `text`; `mention(id)` draws a mention. */
export function render(text, mention) {
  const out = [];
  const fences = text.split('```');
  fences.forEach((part, i) => {
    if (i % 2 === 1 && i < fences.length - 1) {
      // A fenced block; its first line may name a language, which is dropped.
      const body = part.replace(/^[a-z0-9+-]*\n/i, '');
      out.push(h('pre', { class: 'code' }, h('code', {}, body.replace(/\n$/, ''))));
    } else {
      out.push(...lines(i % 2 === 1 ? `\`\`\`${part}` : part, mention));
    }
  });
  return out;
}

/** Lines, with runs of `> ` lines as quotes. */
function lines(text, mention) {
  const out = [];
  let quote = null;
  text.split('\n').forEach((line, i, all) => {
    const q = /^> ?(.*)$/.exec(line);
    if (q) {
      if (!quote) out.push(quote = h('blockquote', {}));
      else quote.append('\n');
      quote.append(...inline(q[1], mention));
      return;
    }
    quote = null;
    out.push(...inline(line, mention));
    if (i < all.length - 1) out.push('\n');
  });
  return out;
}

// Inline spans, first match wins at each position.
const RULES = [
  [/`([^`\n]+)`/, (m) => h('code', {}, m[1])],
  [/<@(\d+)>/, (m, mention) => mention(m[1])],
  [/(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])/, (m) => link(m[1])],
  [/\*\*([^*]+)\*\*/, (m, mention) => h('strong', {}, ...inline(m[1], mention))],
  [/~~([^~]+)~~/, (m, mention) => h('s', {}, ...inline(m[1], mention))],
  [/\|\|([^|]+)\|\|/, (m, mention) => spoiler(inline(m[1], mention))],
  [/(?<![\w*])\*([^*\s][^*]*)\*(?!\w)/, (m, mention) => h('em', {}, ...inline(m[1], mention))],
  [/(?<!\w)_([^_\s][^_]*)_(?!\w)/, (m, mention) => h('em', {}, ...inline(m[1], mention))],
];

function inline(text, mention) {
  const out = [];
  let rest = text;
  while (rest) {
    let best = null;
    for (const [re, make] of RULES) {
      const m = re.exec(rest);
      if (m && (!best || m.index < best.m.index)) best = { m, make };
    }
    if (!best) break;
    if (best.m.index) out.push(rest.slice(0, best.m.index));
    out.push(best.make(best.m, mention));
    rest = rest.slice(best.m.index + best.m[0].length);
  }
  if (rest) out.push(rest);
  return out;
}

function link(href) {
  // The URL constructor normalises it; only web links become links.
  let url;
  try { url = new URL(href); } catch { return href; }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return href;
  return h('a', { href: url.href, target: '_blank', rel: 'noopener noreferrer nofollow' }, href);
}

function spoiler(children) {
  const s = h('button', { type: 'button', class: 'spoiler', 'aria-label': 'Spoiler, hidden: click to show' }, ...children);
  s.onclick = () => { s.classList.add('shown'); s.removeAttribute('aria-label'); };
  return s;
}
