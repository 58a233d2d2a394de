// The small DOM helpers the panels share: building elements, keeping a list
// in step with its items without rebuilding it, and the level icons.

import { level, markPath } from './palette.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'colour') e.style.color = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
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
