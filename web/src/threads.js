// Hotline threads for people: each thread named by what it is about (the
// callsigns of an alert's aircraft; a volume's party, altitude band and
// window such as "coalition FL220–FL240 06:00–08:00Z"), never by its id,
// with its state for the party logged in (needs my acknowledgment,
// escalated, waiting for the other party, done), ordered with what needs
// action first. The names come from the subject the service puts on its
// items, else from what the console knows (open alerts, volumes), else
// from the messages themselves.

import { flightLevel } from './geo.js';

// The states of a thread, in the order they are listed.
export const THREAD_STATES = {
  action: { rank: 0, label: 'Needs your acknowledgment' },
  escalated: { rank: 1, label: 'Escalated' },
  waiting: { rank: 2, label: 'Waiting' },
  done: { rank: 3, label: 'Done' },
};

const ALERT_PREFIX = 'alert:';
const VOLUME_PREFIX = 'volume:';

export function flText(altM) {
  return `FL${String(flightLevel(altM)).padStart(3, '0')}`;
}

// bandText is an altitude band as flight levels: "FL220–FL240".
export function bandText(lowerM, upperM) {
  return `${flText(lowerM)}–${flText(upperM)}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function hhmm(ms) {
  return new Date(ms).toISOString().slice(11, 16);
}

// windowText is a window of time in UTC: "06:00–08:00Z", with the days
// it ends later ("22:00–02:00Z+1") and the date when it does not start
// today (UTC): "25 Nov 06:00–08:00Z".
export function windowText(startMs, endMs, nowMs = Date.now()) {
  if (!Number.isFinite(startMs) || !Number.isFinite(endMs)) return '';
  const later = utcDay(endMs) - utcDay(startMs);
  return `${datePrefix(startMs, nowMs)}${hhmm(startMs)}–${hhmm(endMs)}Z${later > 0 ? `+${later}` : ''}`;
}

const utcDay = (ms) => Math.floor(ms / 86400000);

// datePrefix is "25 Nov " for a moment on another UTC day than nowMs's,
// "" on the same.
function datePrefix(ms, nowMs) {
  if (utcDay(ms) === utcDay(nowMs)) return '';
  const d = new Date(ms);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} `;
}

// volumeText names a volume: "coalition FL220–FL240 06:00–08:00Z".
export function volumeText(v, nowMs) {
  return `${v.party} ${bandText(v.alt_lower_m, v.alt_upper_m)} ${windowText(Date.parse(v.start), Date.parse(v.end), nowMs)}`.trim();
}

function aircraftText(ac) {
  return ac.callsign || ac.aircraft;
}

// threadKey is the thread a message belongs to.
export function threadKey(m) {
  return m.thread || (m.ref && m.ref.alert_id ? `${ALERT_PREFIX}${m.ref.alert_id}` : `message:${m.id}`);
}

// excerpt is text on one line, cut to n characters.
export function excerpt(text, n = 48) {
  const s = String(text || '').replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n - 1).trimEnd()}…` : s;
}

// threadName names the thread key with messages msgs (oldest first) for
// people. known holds what else the console knows: alerts (id -> alert)
// and volumes (list).
export function threadName(key, msgs, known = {}, nowMs = Date.now()) {
  const subjects = msgs.map((m) => m.subject).filter(Boolean);
  if (key.startsWith(ALERT_PREFIX)) {
    let aircraft = subjects.find((s) => s.aircraft && s.aircraft.length)?.aircraft;
    const a = known.alerts && known.alerts.get(key.slice(ALERT_PREFIX.length));
    if (!aircraft && a) aircraft = a.aircraft;
    if (aircraft && aircraft.length === 1) return `Outside its volumes: ${aircraftText(aircraft[0])} (${aircraft[0].party})`;
    if (aircraft && aircraft.length) return `Conflict ${aircraft.map(aircraftText).join(' ↔ ')}`;
    if (!msgs.length) return 'Alert';
    const raised = Date.parse(msgs[0].created);
    return `Alert raised at ${datePrefix(raised, nowMs)}${hhmm(raised)}Z`;
  }
  if (key.startsWith(VOLUME_PREFIX)) {
    const id = key.slice(VOLUME_PREFIX.length);
    let own = null;
    const others = new Map();
    for (const s of subjects) {
      for (const v of s.volumes || []) {
        if (v.id === id) own = own || v;
        else others.set(v.id, v);
      }
    }
    if (!own && known.volumes) own = known.volumes.find((v) => v.id === id) || null;
    const head = own ? volumeText(own, nowMs) : `volume of ${msgs.find((m) => m.from !== 'deconflict')?.from || 'another party'}`;
    if (!others.size) return `Volume ${head}`;
    const list = [...others.values()];
    const tail = list.length === 1 ? volumeText(list[0], nowMs) : `${list.length} volumes of ${[...new Set(list.map((v) => v.party))].join(', ')}`;
    return `Volume conflict: ${head} ↔ ${tail}`;
  }
  if (/^rules:\d+$/.test(key)) return `Rules proposal v${key.slice('rules:'.length)}`;
  // A thread a party named keeps its name; one the service named for it
  // (t-<random>) is called by its first message.
  if (/^t-[0-9a-f]{8,}$/.test(key) || key.startsWith('message:')) {
    const first = msgs[0];
    return first ? `${first.kind} from ${first.from}: ${excerpt(first.text)}` : 'Message';
  }
  return key;
}

// threadStatus is where a thread stands for party me: its state key, a
// label, the parties still to acknowledge, whether any item escalated,
// and the item whose deadline runs out first (null when none runs).
export function threadStatus(msgs, me, mustAck) {
  const pending = msgs.filter((m) => m.state !== 'acknowledged');
  const mine = pending.filter(mustAck);
  const escalated = pending.some((m) => m.state === 'escalated');
  const waitingFor = new Set();
  for (const m of pending) for (const p of m.to || []) if (p !== me && !(m.acks || []).some((k) => k.party === p)) waitingFor.add(p);
  const who = [...waitingFor].join(', ');
  let key;
  let label;
  if (mine.length) {
    key = 'action';
    label = `${THREAD_STATES.action.label}${mine.length > 1 ? ` (${mine.length})` : ''}${escalated ? ' · ESCALATED' : ''}`;
  } else if (escalated) {
    key = 'escalated';
    label = `ESCALATED · waiting for ${who || 'acknowledgment'}`;
  } else if (pending.length) {
    key = 'waiting';
    label = `Waiting for ${who || 'acknowledgment'}`;
  } else {
    key = 'done';
    // Settled items are done without every acknowledgment.
    label = msgs.some((m) => m.settled) ? 'Done: settled, nothing left to answer' : 'Done: everyone acknowledged';
  }
  const running = (mine.length ? mine : pending).map((m) => ({ m, at: Date.parse(m.state === 'escalated' ? m.escalation_deadline : m.deadline) }));
  running.sort((a, b) => a.at - b.at);
  return { key, label, escalated, mine: mine.length, waitingFor: [...waitingFor], next: running.length ? running[0].m : null };
}

function lastActivity(msgs) {
  let t = 0;
  for (const m of msgs) {
    t = Math.max(t, Date.parse(m.created) || 0);
    for (const k of m.acks || []) t = Math.max(t, Date.parse(k.time) || 0);
  }
  return t;
}

// orderThreads sorts threads ({key, msgs, status}) with what needs action
// first: my acknowledgments (escalated first, then the nearest deadline),
// then escalated threads, then those waiting for others, then done ones;
// newest activity first within a state.
export function orderThreads(threads) {
  const deadline = (t) => (t.status.next ? Date.parse(t.status.next.state === 'escalated' ? t.status.next.escalation_deadline : t.status.next.deadline) : Infinity);
  return threads.sort(
    (a, b) =>
      THREAD_STATES[a.status.key].rank - THREAD_STATES[b.status.key].rank ||
      (a.status.key === 'action' ? Number(b.status.escalated) - Number(a.status.escalated) || deadline(a) - deadline(b) : 0) ||
      lastActivity(b.msgs) - lastActivity(a.msgs) ||
      a.key.localeCompare(b.key),
  );
}

// itemText is what a person reads of a system item that has a better
// wording than its recorded text (which names volumes by id): a volume
// conflict from its subject, which names the written volume and every
// volume of the other party it conflicts with (one item tells of all of
// them, however many: each one is named, none left out). null keeps the
// recorded text.
export function itemText(m, nowMs = Date.now()) {
  const vs = m.subject && m.subject.volumes;
  if (m.kind !== 'volume_conflict' || !vs || vs.length < 2) return null;
  const head = volumeText(vs[0], nowMs);
  if (vs.length === 2) return `Volume ${head} conflicts with ${volumeText(vs[1], nowMs)}.`;
  const others = vs.slice(1);
  const parties = [...new Set(others.map((v) => v.party))].join(', ');
  return `Volume ${head} conflicts with ${others.length} volumes of ${parties}: ${others.map((v) => volumeText(v, nowMs)).join('; ')}.`;
}
