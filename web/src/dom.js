// The small DOM helpers the panels share: building elements, keeping a list
// in step with its items without rebuilding it, and the level icons.

import { level, markPath } from './palette.js';

export const $ = (id) => document.getElementById(id);

// Other parties' strings (callsigns, aircraft ids, texts, replies,
// reasons) are only ever text: set as textContent, never parsed as HTML.
// Two things more keep them from passing for something else. The
// characters that are not shown as themselves (controls but the line feed
// and the tab, and the invisible formatting characters the service
// refuses in texts and names, docs/WIRE.md: bidi embeddings, overrides and
// isolates, zero widths, ...) are shown as ⟨U+XXXX⟩: one held by a record
// older than that rule, or sent by a server that does not check it, can
// neither reorder what is shown around it (an override making text read
// as another party's) nor hide itself. And a string the page puts among
// its own words is isolated (bdi, or unicode-bidi: isolate), so that even
// right-to-left letters in it cannot move the words around it.
const HIDDEN = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}]/gu;

// MAX_TEXT_CHARS bounds a string shown (a hotline text is at most 4,096
// bytes): a huge one is cut, saying how much was left out.
export const MAX_TEXT_CHARS = 8192;

// visible is s as it is shown: every hidden character as ⟨U+XXXX⟩, cut
// to max characters.
export function visible(s, max = MAX_TEXT_CHARS) {
  if (s === null || s === undefined) return '';
  let t = String(s);
  if (t.length > max) {
    let cut = t.slice(0, max);
    if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
    t = `${cut}… (${t.length - cut.length} more characters not shown)`;
  }
  return t.replace(HIDDEN, (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`);
}

// The attributes whose values are read or shown as text.
const TEXT_ATTRS = new Set(['aria-label', 'title', 'aria-valuetext', 'placeholder']);

// el makes an element: props are its attributes (class, text, colour and
// on* handlers aside), children its nodes or strings. Every string shown
// goes through visible().
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = visible(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'colour') e.style.color = v;
    else e.setAttribute(k, TEXT_ATTRS.has(k) ? visible(v) : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(typeof c === 'string' ? visible(c) : c);
  return e;
}

// bdi is another party's string s, isolated among the page's words.
export function bdi(s) {
  return el('bdi', { text: s });
}

// setText writes s, as visible() shows it, into e when it changed.
export function setText(e, s) {
  const t = visible(s);
  if (e.textContent !== t) e.textContent = t;
}

// reconcile makes container hold one element per item, in order, reusing
// the element of an item whose signature did not change. Rebuilding every
// second would steal focus, break clicks in progress and make screen readers
// announce the whole list again.
export function reconcile(container, items, key, signature, build) {
  const existing = new Map([...container.children].map((e) => [e.dataset.key, e]));
  const rows = items.map((item) => {
    const k = String(key(item));
    const sig = signature(item);
    let e = existing.get(k);
    if (!e || e.dataset.sig !== sig) {
      const fresh = build(item);
      fresh.dataset.key = k;
      fresh.dataset.sig = sig;
      if (e) {
        const hadFocus = e.contains(document.activeElement);
        const cls = hadFocus ? document.activeElement.className : '';
        e.replaceWith(fresh);
        if (hadFocus) (fresh.querySelector(cls ? `.${cls.split(' ')[0]}` : 'button') || fresh.querySelector('button'))?.focus();
      }
      e = fresh;
    }
    existing.delete(k);
    return e;
  });
  for (const e of existing.values()) e.remove();
  rows.forEach((e, i) => {
    if (container.children[i] !== e) container.insertBefore(e, container.children[i] || null);
  });
}

// markIcon is a 16 px canvas holding one mark (see palette.js) of colour,
// centred at (8, cy) with radius r.
export function markIcon(mark, colour, cy, r) {
  const c = document.createElement('canvas');
  c.width = 16;
  c.height = 16;
  c.className = 'icon';
  c.setAttribute('aria-hidden', 'true');
  const ctx = c.getContext('2d');
  ctx.beginPath();
  markPath(ctx, mark, 8, cy, r);
  ctx.fillStyle = colour;
  ctx.fill();
  return c;
}

// levelIcon is the mark of an alert level.
export function levelIcon(name) {
  const lv = level(name);
  return markIcon(lv.mark, lv.colour, 8.5, 5.5);
}
