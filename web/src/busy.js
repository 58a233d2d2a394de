// Refusals for now: the service answers 429 with Retry-After when a party's
// budget (its request rate, its resolutions on demand, its volume writes,
// ...) does not hold a request (docs/WIRE.md). The console then waits at
// least that long before asking again for the same thing, says what is
// delayed and until when, and asks again once the time has passed if the
// thing is still wanted. Every caller goes through askPatiently, so that the
// rule is one piece of code.
//
// A Retry-After is read in seconds or as an HTTP date; one missing or
// unreadable counts as RETRY_AFTER_DEFAULT_S, and a wait is at least
// RETRY_AFTER_MIN_S and at most RETRY_AFTER_MAX_S (the service says up to a
// day for a budget that refills slowly; a console that waited a day would
// be a console that stopped, and one a minute apart does not hammer), or
// the caller's maxS.
//
// The waits run on a clock a test can replace (useManualClock), so that a
// test proves "no second request before Retry-After" without timing.

import { $, el } from './dom.js';
import { say } from './live.js';

export const RETRY_AFTER_DEFAULT_S = 5;
export const RETRY_AFTER_MIN_S = 1;
export const RETRY_AFTER_MAX_S = 60;

const realClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

let clock = realClock;

// nowMs is the time of the clock the waits run on.
export function nowMs() {
  return clock.now();
}

// sleepMs waits ms on the clock the waits run on.
export function sleepMs(ms) {
  return clock.sleep(ms);
}

// useManualClock makes the waits run on a clock that moves only when told
// (for the tests): it returns advance(ms), which moves it and wakes the
// waits that are due.
export function useManualClock(startMs = Date.now()) {
  let now = startMs;
  let sleepers = [];
  clock = {
    now: () => now,
    sleep: (ms) => new Promise((resolve) => sleepers.push({ at: now + ms, resolve })),
  };
  return (ms) => {
    now += ms;
    const due = sleepers.filter((s) => s.at <= now);
    sleepers = sleepers.filter((s) => s.at > now);
    for (const s of due) s.resolve();
  };
}

// retryAfterSeconds reads a Retry-After header: delta-seconds or an HTTP
// date (the seconds from now, on the wall clock the date is of, at least
// 0); null when absent or unreadable.
export function retryAfterSeconds(header, now = Date.now()) {
  if (header === null || header === undefined) return null;
  const v = String(header).trim();
  if (/^\d+$/.test(v)) return Number(v);
  // Every form of an HTTP date begins with the day's name (Date.parse
  // would read "-3" as a year).
  if (!/^[A-Z][a-z]{2}/.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

// refusedForNow tells whether err is a refusal to ask again later (429).
export function refusedForNow(err) {
  return Boolean(err) && err.status === 429;
}

// waitMsOf is how long to wait after the refusal err before asking again:
// its Retry-After (RETRY_AFTER_DEFAULT_S when it has none) within
// [RETRY_AFTER_MIN_S, maxS].
export function waitMsOf(err, maxS = RETRY_AFTER_MAX_S) {
  const s = err && typeof err.retryAfterS === 'number' ? err.retryAfterS : RETRY_AFTER_DEFAULT_S;
  return 1000 * Math.min(maxS, Math.max(RETRY_AFTER_MIN_S, s));
}

// The times before which nothing of a kind is asked again: kind -> ms. A
// refusal of the party's request rate (type rate-limited) holds every kind
// (EVERYTHING): the service would refuse them all.
const heldUntil = new Map();
const EVERYTHING = '*';

function heldUntilMs(kind) {
  return Math.max(heldUntil.get(kind) || 0, heldUntil.get(EVERYTHING) || 0);
}

function hold(kind, err, untilMs) {
  const type = (err.problem && err.problem.type) || '';
  const k = /\/rate-limited$/.test(type) ? EVERYTHING : kind;
  heldUntil.set(k, Math.max(heldUntil.get(k) || 0, untilMs));
}

// NoLongerWanted ends an askPatiently whose thing was not wanted any more
// when its wait ended; nothing was asked again.
export class NoLongerWanted extends Error {
  constructor(kind) {
    super(`${kind}: no longer wanted`);
    this.noLongerWanted = true;
  }
}

// askPatiently runs send, which asks the service for a thing of kind
// (one budget's: 'resolutions', 'tracks', ...), and returns its answer.
// While the service refuses for now (429), and while an earlier refusal
// of the kind holds, it waits as the refusal says, calling onWait(untilMs,
// err) so that the page can say so, then asks again if wanted() still
// says so (else it throws NoLongerWanted). Any other failure is thrown as
// it is, and so is a refusal whose Retry-After (not capped) would take
// the waits past maxTotalWaitMs. maxS caps each wait (RETRY_AFTER_MAX_S).
export async function askPatiently(kind, send, { wanted = () => true, onWait = () => {}, maxS = RETRY_AFTER_MAX_S, maxTotalWaitMs = Infinity } = {}) {
  let waitedMs = 0;
  let refusal = null;
  for (;;) {
    const until = heldUntilMs(kind);
    if (until > clock.now()) {
      onWait(until, refusal);
      const began = clock.now();
      await clock.sleep(until - began);
      waitedMs += clock.now() - began;
      if (!wanted()) throw new NoLongerWanted(kind);
      continue;
    }
    try {
      return await send();
    } catch (err) {
      if (!refusedForNow(err)) throw err;
      const askedMs = 1000 * (typeof err.retryAfterS === 'number' ? err.retryAfterS : RETRY_AFTER_DEFAULT_S);
      if (waitedMs + askedMs > maxTotalWaitMs) throw err;
      refusal = err;
      hold(kind, err, clock.now() + waitMsOf(err, maxS));
    }
  }
}

// waitText says a wait until untilMs for people: "retrying in 2 s".
export function waitText(untilMs, now = nowMs()) {
  const s = Math.ceil((untilMs - now) / 1000);
  return s > 0 ? `retrying in ${s} s` : 'retrying now';
}

// busyNote is an element saying "what, retrying in N s": what in a span
// of its own (class busy-what) and the countdown in another (class
// busy-wait, data-retry-at), which tickWaits keeps current. The countdown
// changes every second, so it is never put inside a live region (a screen
// reader would read every second of it): the start of a wait is said once
// (live.js's say) instead.
export function busyNote(what, untilMs, tag = 'span', props = {}) {
  return el(
    tag,
    { class: 'busy', ...props },
    el('span', { class: 'busy-what', text: what }),
    el('span', { class: 'busy-wait', 'data-retry-at': String(untilMs), text: `, ${waitText(untilMs)}` }),
  );
}

// The reads of the page's own panels delayed or failed, shown on the
// delays line (#delays): key -> { what, untilMs } while a refusal is
// waited out, { what, error } after a failure, until the thing comes.
const delays = new Map();

// stem is what a delay is of: "Volumes" of "Volumes busy".
const stem = (d) => d.what.replace(/ (busy|not loaded)$/, '');

// delayed says that what (of key) is refused for now and asked again at
// untilMs; what '' says that it came. A wait that starts and one that
// ends are said (live.js); the countdown between is only shown.
export function delayed(key, what, untilMs) {
  const prev = delays.get(key);
  if (what) {
    const d = { what: `${what} busy`, untilMs };
    delays.set(key, d);
    if (!prev || prev.what !== d.what || !prev.untilMs) say(`${d.what}, ${waitText(untilMs)}`);
  } else {
    delays.delete(key);
    if (prev) say(`${stem(prev)} loaded`);
  }
  renderDelays();
}

// failed says that what (of key) could not be had, and why; said once
// while it stays the same.
export function failed(key, what, err) {
  const prev = delays.get(key);
  const d = { what: `${what} not loaded`, error: (err && err.message) || String(err) };
  delays.set(key, d);
  if (!prev || prev.what !== d.what || prev.error !== d.error) say(`${d.what}: ${d.error}`);
  renderDelays();
}

function renderDelays() {
  const line = $('delays');
  if (!line) return;
  line.replaceChildren(...[...delays.values()].map((d) => (d.untilMs ? busyNote(d.what, d.untilMs) : el('span', { class: 'failed', text: `${d.what}: ${d.error}` }))));
  line.hidden = delays.size === 0;
}

// tickWaits counts the waits shown in root down, once a second.
export function tickWaits(root, now = nowMs()) {
  for (const e of root.querySelectorAll('[data-retry-at]')) {
    const text = `, ${waitText(Number(e.dataset.retryAt), now)}`;
    if (e.textContent !== text) e.textContent = text;
  }
}
