// What is said to screen readers politely: the page's one polite live
// region (#said, out of sight) is told the changes that matter (a new
// hotline item, an escalation, an acknowledgment, a state of the
// connection, a wait that starts or ends, an action's outcome), each once.
// The panels themselves are not live regions: they hold countdowns that
// change every second, which a live region would read every second.
// Warnings are announced at once, assertively, by attention.js.

import { $, visible } from './dom.js';

// MAX_AT_ONCE bounds what is said of one burst (a flood of events).
const MAX_AT_ONCE = 3;
const MAX_KEPT = 100;

let queue = [];
let timer = 0;
const kept = []; // what was said, newest last (for the tests)

// say has text said once, with whatever else is said in the same turn.
export function say(text) {
  if (!text) return;
  text = visible(text, 300);
  queue.push(text);
  kept.push(text);
  if (kept.length > MAX_KEPT) kept.shift();
  if (!timer) timer = setTimeout(flush, 0);
}

function flush() {
  timer = 0;
  const region = $('said');
  const items = queue;
  queue = [];
  if (!region || !items.length) return;
  const more = items.length - MAX_AT_ONCE;
  const text = `${items.slice(0, MAX_AT_ONCE).join('. ')}${more > 0 ? `. And ${more} more.` : ''}`;
  // The same text twice in a row must be read twice: clear first, then
  // write it in a later turn.
  region.textContent = '';
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

// said lists what was said, newest last.
export function said() {
  return kept.slice();
}
