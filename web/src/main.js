// The console of one party: log in, then keep the map, the alerts and the
// hotline in step with the service. Tracks are polled about once a second
// (they are not in the durable event stream); alerts, messages,
// acknowledgments, escalations and volume changes arrive on the event
// stream, which resumes from the last event id after a lost connection.

import { api, savedToken, saveToken, forgetToken } from './api.js';
import { EventStream, EventParser } from './sse.js';
import { MapView } from './map.js';
import { PartyStyles, LEVELS, level, markPath } from './palette.js';
import { formatDuration, formatTime, formatDistance, projX, projY, unprojX, unprojY } from './geo.js';

const TRACK_POLL_MS = 1000;
const REFRESH_MS = 150;
// The lists show the most urgent items; a flood of alerts (a misconfigured
// feed can make thousands nonconforming) must not freeze the page.
const MAX_ALERT_ROWS = 100;
const MAX_THREADS = 100;
const VOLUME_POLL_MS = 15000;
const SLIDER_BACK_MIN = 360;
const SLIDER_AHEAD_MIN = 1440;

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  rules: null,
  alerts: new Map(),
  messages: new Map(),
  volumes: [],
  conn: 'offline',
  trackPollOK: true,
  sliderMin: 0,
  selectedThread: '',
  eventsApplied: 0,
};

const styles = new PartyStyles();

// Anything that goes wrong in the page is kept for the browser tests, which
// fail on it: script errors and anything the security policy blocked.
const pageErrors = [];
window.addEventListener('error', (e) => pageErrors.push(`error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => pageErrors.push(`unhandled rejection: ${e.reason}`));
document.addEventListener('securitypolicyviolation', (e) => pageErrors.push(`blocked by ${e.violatedDirective}: ${e.blockedURI}`));
let map = null;
let stream = null;
let pending = null; // events that arrive while a snapshot loads
let trackTimer = 0;
let refreshTimer = 0;
const messageByAlert = new Map(); // alert id -> its hotline item
let trackInFlight = false;

function el(tag, props = {}, ...children) {
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

// ---- login ----------------------------------------------------------------

async function login(token) {
  saveToken(token);
  try {
    const me = await api.me();
    if (!me || !me.party) throw new Error('the service did not say which party this token is');
    state.me = me;
  } catch (err) {
    forgetToken();
    $('login-error').textContent = err.status === 401 ? 'This token is not valid.' : `Cannot log in: ${err.message}`;
    return;
  }
  $('login-error').textContent = '';
  $('token').value = '';
  start();
}

function start() {
  styles.setOwn(state.me.party);
  $('login').hidden = true;
  $('console').hidden = false;
  $('whoami').hidden = false;
  $('logout').hidden = false;
  $('party-name').textContent = state.me.party + (state.me.operator ? ' (operator)' : '');
  $('party-name').style.color = styles.colour(state.me.party);
  document.title = `deconflict · ${state.me.party}`;

  map = new MapView({ container: $('map'), base: $('map-base'), live: $('map-live'), tooltip: $('tooltip'), styles });
  loadAtlas();
  bindControls();
  renderLegend();
  loadRules();
  loadVolumes();
  setInterval(loadVolumes, VOLUME_POLL_MS);
  pollTracks();
  setInterval(tick, 1000);
  requestAnimationFrame(loop);

  stream = new EventStream({ url: '/v1/events', onEvent: onEvent, onState: onStreamState });
  stream.start();
}

async function loadAtlas() {
  const meta = document.querySelector('meta[name="deconflict-atlas"]');
  try {
    const res = await fetch(meta.content, { cache: 'force-cache', credentials: 'omit' });
    map.setAtlas(await res.json());
  } catch {
    // The map still works without outlines.
  }
}

async function loadRules() {
  try {
    state.rules = await api.rules();
    $('rules-version').textContent = `v${state.rules.version}`;
  } catch (err) {
    $('rules-version').textContent = 'unknown';
  }
}

// ---- data -----------------------------------------------------------------

async function loadVolumes() {
  const now = Date.now();
  const from = new Date(now - SLIDER_BACK_MIN * 60000).toISOString();
  const to = new Date(now + SLIDER_AHEAD_MIN * 60000).toISOString();
  try {
    const res = await api.volumes(from, to);
    state.volumes = (res && res.volumes) || [];
    for (const v of state.volumes) if (styles.see(v.party)) renderLegend();
    map.setVolumes(state.volumes, sliderTime());
  } catch {
    // Kept as it was; the next poll tries again.
  }
}

async function pollTracks() {
  clearTimeout(trackTimer);
  if (!trackInFlight) {
    trackInFlight = true;
    try {
      const res = await api.tracks(map.viewBBox());
      const list = (res && res.tracks) || [];
      map.setTracks(list);
      let newParty = false;
      for (const t of list) newParty = styles.see(t.party) || newParty;
      if (newParty) {
        renderLegend();
        renderKnownParties();
      }
      state.trackPollOK = true;
    } catch (err) {
      state.trackPollOK = false;
      if (err.status === 401) logout();
    } finally {
      trackInFlight = false;
      renderConn();
    }
  }
  trackTimer = setTimeout(pollTracks, TRACK_POLL_MS);
}

async function loadSnapshot() {
  pending = [];
  try {
    const [alerts, messages] = await Promise.all([api.alerts(), api.messages()]);
    state.alerts.clear();
    for (const a of (alerts && alerts.alerts) || []) state.alerts.set(String(a.id), a);
    state.messages.clear();
    messageByAlert.clear();
    for (const m of (messages && messages.messages) || []) putMessage(m);
  } catch {
    // The stream keeps running; a later reconnect loads again.
  }
  const queued = pending;
  pending = null;
  for (const [kind, ev] of queued) apply(kind, ev);
  refresh();
}

function onStreamState(s, attempt) {
  const wasLive = state.conn === 'live';
  state.conn = s;
  state.attempt = attempt;
  if (s === 'unauthorized') logout();
  // Without an event id there is nothing to resume from, so load the picture.
  if (s === 'live' && !wasLive && !stream.lastEventId) loadSnapshot();
  renderConn();
}

function onEvent(kind, ev) {
  if (pending) {
    pending.push([kind, ev]);
    return;
  }
  apply(kind, ev);
  // Events come in bursts: draw the lists once per burst.
  if (!refreshTimer) {
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      refresh();
    }, REFRESH_MS);
  }
}

// putMessage stores a message; an alert can have several hotline items (a
// new one when its level rises), and the alert row shows the newest.
function putMessage(m) {
  state.messages.set(m.id, m);
  const ref = m.ref && m.ref.alert_id;
  if (ref === undefined || ref === null || ref === '') return;
  const prev = messageByAlert.get(String(ref));
  if (!prev || prev.id === m.id || Date.parse(m.created) >= Date.parse(prev.created)) messageByAlert.set(String(ref), m);
}

function threadLabel(name, msgs) {
  const ref = msgs[0] && msgs[0].ref && msgs[0].ref.alert_id;
  const a = ref !== undefined && ref !== null ? state.alerts.get(String(ref)) : null;
  if (!a) return name;
  const who = (a.aircraft || []).map((x) => x.callsign || x.aircraft).join(' ↔ ') || (a.volumes || []).map((v) => v.id).join(' ↔ ');
  return `${level(a.level).label.toLowerCase()} ${a.kind.replace('_', ' ')}: ${who}`;
}

function apply(kind, ev) {
  const data = ev && ev.data;
  state.eventsApplied++;
  switch (kind) {
    case 'alert_raised':
    case 'alert_updated':
      if (data && data.id !== undefined) state.alerts.set(String(data.id), data);
      break;
    case 'alert_cleared':
      if (data && data.id !== undefined) state.alerts.delete(String(data.id));
      break;
    case 'message':
    case 'ack':
    case 'escalated':
      if (data && data.id !== undefined) {
        putMessage(data);
        for (const p of [data.from, ...(data.to || [])]) if (p !== 'deconflict' && styles.see(p)) renderKnownParties();
      }
      break;
    case 'volume_changed':
    case 'volume_conflict':
      loadVolumes();
      break;
    case 'rules_changed':
      if (data && data.version !== undefined) {
        state.rules = data;
        $('rules-version').textContent = `v${data.version}`;
      }
      break;
    default:
      break;
  }
}

function refresh() {
  map.setAlerts([...state.alerts.values()]);
  renderAlerts();
  renderHotline();
}

// ---- connection -------------------------------------------------------------

function renderConn() {
  let s = state.conn;
  if (s === 'live' && !state.trackPollOK) s = 'degraded';
  const text = {
    connecting: 'Connecting…',
    live: 'Live',
    degraded: 'Live events, tracks delayed',
    reconnecting: `Connection lost, reconnecting${state.attempt > 1 ? ` (attempt ${state.attempt})` : ''}…`,
    unauthorized: 'Logged out',
    offline: 'Not connected',
  }[s];
  const c = $('conn');
  if (c.dataset.state !== s) c.dataset.state = s;
  if ($('conn-text').textContent !== text) $('conn-text').textContent = text;
}

// ---- alerts -----------------------------------------------------------------

function alertMessage(a) {
  return messageByAlert.get(String(a.id)) || null;
}

const parsedTimes = new WeakMap();
function timeMs(a) {
  let t = parsedTimes.get(a);
  if (t === undefined) {
    t = Date.parse(a.time) || 0;
    parsedTimes.set(a, t);
  }
  return t;
}

function sortedAlerts() {
  return [...state.alerts.values()]
    .filter((a) => a.state !== 'cleared')
    .sort((a, b) => level(b.level).rank - level(a.level).rank || timeMs(b) - timeMs(a) || String(b.id).localeCompare(String(a.id)));
}

function losText(a) {
  if (a.kind !== 'conflict') return a.kind === 'volume_conflict' ? 'volume conflict' : 'outside its volumes';
  const elapsed = (Date.now() - Date.parse(a.time)) / 1000;
  const left = (a.t_in_s || 0) - elapsed;
  return left > 0 ? `LoS in ${formatDuration(left)}` : 'LoS now';
}

function aircraftLabel(ac) {
  return `${ac.callsign || ac.aircraft} (${ac.party})`;
}

function ackSummary(m) {
  if (!m) return 'No hotline item yet';
  return (m.to || [])
    .map((p) => {
      const ack = (m.acks || []).find((k) => k.party === p);
      return ack ? `${p}: acknowledged ${formatTime(Date.parse(ack.time)).slice(11)}` : `${p}: waiting`;
    })
    .join(' · ');
}

function mustAck(m) {
  return m && state.me && (m.to || []).includes(state.me.party) && !(m.acks || []).some((k) => k.party === state.me.party);
}

// reconcile makes container hold one element per item, in order, reusing
// the element of an item whose signature did not change. Rebuilding every
// second would steal focus, break clicks in progress and make screen readers
// announce the whole list again.
function reconcile(container, items, key, signature, build) {
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

function alertPair(a) {
  return (a.aircraft || []).map(aircraftLabel).join(' ↔ ') || (a.volumes || []).map((v) => `${v.id} (${v.party})`).join(' ↔ ');
}

function cpaText(a) {
  return a.kind === 'conflict' ? `CPA ${formatDistance(a.d_h_cpa_m || 0)} / ${Math.round(a.d_v_cpa_m || 0)} m` : '';
}

function renderAlerts() {
  const list = $('alerts');
  const all = sortedAlerts();
  const alerts = all.slice(0, MAX_ALERT_ROWS);
  reconcile(
    list,
    alerts,
    (a) => a.id,
    (a) => {
      const m = alertMessage(a);
      return JSON.stringify([a.level, a.kind, alertPair(a), m && m.state, ackSummary(m), mustAck(m)]);
    },
    (a) => {
      const lv = level(a.level);
      const m = alertMessage(a);
      const escalated = m && m.state === 'escalated';
      const pair = alertPair(a);
      const badge = el('span', { class: 'badge' }, levelIcon(a.level), el('span', { text: lv.label }));
      const main = el(
        'button',
        { type: 'button', class: 'alert-main', onclick: () => focusAlert(a.id) },
        badge,
        el('span', { class: 'pair', text: pair }),
        el('span', { class: 'los', 'data-alert-los': String(a.id), text: losText(a) }),
        a.kind === 'conflict' ? el('span', { class: 'cpa', text: cpaText(a) }) : null,
        escalated ? el('span', { class: 'escalated-flag', text: 'ESCALATED' }) : null,
        el('span', { class: 'visually-hidden', text: 'Show on map' }),
      );
      const ackBtn = mustAck(m)
        ? el('button', { type: 'button', class: 'ack', 'aria-label': `Acknowledge ${lv.label} alert ${pair}`, onclick: () => acknowledge(m.id) }, 'Acknowledge')
        : null;
      return el(
        'li',
        { class: `alert level-${a.level}${escalated ? ' escalated' : ''}`, 'data-alert-id': String(a.id) },
        main,
        el('div', { class: 'alert-ack' }, el('span', { class: 'ack-state', text: ackSummary(m) }), ackBtn),
      );
    },
  );
  // Figures that change every update are written in place.
  for (const a of alerts) {
    const li = list.querySelector(`li[data-key="${CSS.escape(String(a.id))}"]`);
    const cpa = li && li.querySelector('.cpa');
    if (cpa && cpa.textContent !== cpaText(a)) cpa.textContent = cpaText(a);
    const los = li && li.querySelector('.los');
    if (los && los.textContent !== losText(a)) los.textContent = losText(a);
  }
  $('alert-count').textContent = all.length ? `(${all.length})` : '';
  $('alerts-empty').hidden = all.length > 0;
  $('alerts-more').textContent = all.length > alerts.length ? `${all.length - alerts.length} less urgent alerts not listed.` : '';
}

function levelIcon(name) {
  const c = document.createElement('canvas');
  c.width = 16;
  c.height = 16;
  c.className = 'icon';
  c.setAttribute('aria-hidden', 'true');
  const ctx = c.getContext('2d');
  const lv = level(name);
  ctx.beginPath();
  markPath(ctx, lv.mark, 8, 8.5, 5.5);
  ctx.fillStyle = lv.colour;
  ctx.fill();
  return c;
}

function focusAlert(id) {
  const a = state.alerts.get(String(id));
  if (!a) return;
  const pts = (a.aircraft || []).map((ac) => [ac.lon, ac.lat]);
  if (!pts.length) {
    const vol = state.volumes.find((v) => (a.volumes || []).some((r) => r.id === v.id));
    const fp = vol && vol.footprint;
    if (fp && fp.type === 'Circle') pts.push(fp.center);
    else if (fp && fp.type === 'Polygon') pts.push(fp.coordinates[0][0]);
  }
  if (!pts.length) return;
  const lon = pts.reduce((s, p) => s + p[0], 0) / pts.length;
  const lat = pts.reduce((s, p) => s + p[1], 0) / pts.length;
  map.centerOn(lon, lat);
  map.focus = { lon, lat, at: Date.now() };
}

async function acknowledge(id) {
  try {
    const m = await api.ack(id);
    if (m && m.id !== undefined) putMessage(m);
    refresh();
  } catch (err) {
    $('compose-error').textContent = `Acknowledge failed: ${err.message}`;
  }
}

// ---- hotline ----------------------------------------------------------------

function threads() {
  const by = new Map();
  for (const m of state.messages.values()) {
    const t = m.thread || (m.ref && m.ref.alert_id !== undefined ? `alert ${m.ref.alert_id}` : m.id);
    if (!by.has(t)) by.set(t, []);
    by.get(t).push(m);
  }
  for (const list of by.values()) list.sort((a, b) => Date.parse(a.created) - Date.parse(b.created));
  return [...by.entries()].sort((a, b) => Date.parse(b[1][b[1].length - 1].created) - Date.parse(a[1][a[1].length - 1].created));
}

function messageSig(m) {
  return JSON.stringify([m.state, m.text, m.to, m.acks, mustAck(m)]);
}

function renderHotline() {
  const all = threads();
  if (!state.selectedThread && all.length) state.selectedThread = all[0][0];
  reconcile(
    $('threads'),
    all.slice(0, MAX_THREADS),
    ([name]) => name,
    ([name, msgs]) => JSON.stringify([threadLabel(name, msgs), name === state.selectedThread, msgs.length, msgs.filter(mustAck).length, msgs.some((m) => m.state === 'escalated')]),
    ([name, msgs]) => {
      const open = msgs.filter(mustAck).length;
      const escalated = msgs.some((m) => m.state === 'escalated');
      return el(
        'li',
        {},
        el(
          'button',
          {
            type: 'button',
            class: `thread${name === state.selectedThread ? ' selected' : ''}${escalated ? ' escalated' : ''}`,
            'aria-pressed': String(name === state.selectedThread),
            'data-thread': name,
            onclick: () => {
              state.selectedThread = name;
              $('compose-thread').value = name;
              renderHotline();
            },
          },
          el('span', { class: 'thread-name', text: threadLabel(name, msgs) }),
          el('span', { class: 'thread-meta', text: `${msgs.length} msg${open ? ` · ${open} to acknowledge` : ''}${escalated ? ' · ESCALATED' : ''}` }),
        ),
      );
    },
  );

  const msgs = (all.find(([n]) => n === state.selectedThread) || [null, []])[1];
  const title = state.selectedThread ? `Thread: ${threadLabel(state.selectedThread, msgs)}` : 'No thread selected';
  if ($('thread-title').textContent !== title) $('thread-title').textContent = title;
  reconcile($('messages'), msgs, (m) => m.id, messageSig, (m) => {
    const acks = el(
      'ul',
      { class: 'acks', 'aria-label': 'Acknowledgments' },
      ...(m.to || []).map((p) => {
        const ack = (m.acks || []).find((k) => k.party === p);
        const late = !ack && m.state === 'escalated';
        return el(
          'li',
          { class: ack ? 'acked' : late ? 'late' : 'waiting' },
          el('span', { class: 'ack-mark', 'aria-hidden': 'true', text: ack ? '✓' : late ? '!' : '…' }),
          `${p}: ${ack ? `acknowledged ${formatTime(Date.parse(ack.time)).slice(11)}${ack.reply ? ` — “${ack.reply}”` : ''}` : late ? 'not acknowledged, escalated' : `waiting (deadline ${formatTime(Date.parse(m.deadline)).slice(11)})`}`,
        );
      }),
    );
    const ackBtn = mustAck(m)
      ? el('button', { type: 'button', class: 'ack', 'data-message-id': m.id, 'aria-label': `Acknowledge message from ${m.from}`, onclick: () => acknowledge(m.id) }, 'Acknowledge')
      : null;
    return el(
      'li',
      { class: `message state-${m.state}`, 'data-message-id': m.id },
      el(
        'p',
        { class: 'msg-head' },
        el('strong', { text: m.from, colour: m.from === 'deconflict' ? '' : styles.colour(m.from) }),
        ` → ${(m.to || []).join(', ')} · ${m.kind} · ${formatTime(Date.parse(m.created)).slice(11)}`,
        m.state === 'escalated' ? el('span', { class: 'escalated-flag', text: 'ESCALATED' }) : null,
      ),
      el('p', { class: 'msg-text', text: m.text || '' }),
      acks,
      ackBtn,
    );
  });
}

function renderKnownParties() {
  const dl = $('known-parties');
  dl.replaceChildren(...styles.order.filter((p) => state.me && p !== state.me.party).map((p) => el('option', { value: p })));
}

async function compose(e) {
  e.preventDefault();
  const f = e.target;
  const to = f.to.value.split(',').map((s) => s.trim()).filter(Boolean);
  const msg = { to, kind: f.kind.value, thread: f.thread.value.trim(), text: f.text.value };
  try {
    const m = await api.send(msg);
    if (m && m.id !== undefined) putMessage(m);
    state.selectedThread = msg.thread;
    f.text.value = '';
    $('compose-error').textContent = '';
    refresh();
  } catch (err) {
    $('compose-error').textContent = `Not sent: ${err.message}`;
  }
}

// ---- controls, legend, loop -----------------------------------------------------

function sliderTime() {
  return Date.now() + state.sliderMin * 60000;
}

function renderSlider() {
  $('time-label').textContent = state.sliderMin === 0 ? 'now' : `${formatTime(sliderTime())} (${state.sliderMin > 0 ? '+' : ''}${formatDuration(state.sliderMin * 60)} h)`;
  $('time-slider').setAttribute('aria-valuetext', $('time-label').textContent);
}

function bindControls() {
  $('zoom-in').addEventListener('click', () => map.zoomBy(1.5));
  $('zoom-out').addEventListener('click', () => map.zoomBy(1 / 1.5));
  $('zoom-fit').addEventListener('click', () => map.fit());
  $('time-slider').addEventListener('input', (e) => {
    state.sliderMin = Number(e.target.value);
    map.setVolumeTime(sliderTime());
    renderSlider();
  });
  $('time-now').addEventListener('click', () => {
    state.sliderMin = 0;
    $('time-slider').value = '0';
    map.setVolumeTime(sliderTime());
    renderSlider();
  });
  $('compose').addEventListener('submit', compose);
  renderSlider();
}

function renderLegend() {
  const ul = $('legend');
  const items = [];
  for (const p of styles.order) {
    const c = document.createElement('canvas');
    c.width = 16;
    c.height = 16;
    c.className = 'icon';
    c.setAttribute('aria-hidden', 'true');
    const ctx = c.getContext('2d');
    ctx.beginPath();
    markPath(ctx, styles.shape(p), 8, 8, 5);
    ctx.fillStyle = styles.colour(p);
    ctx.fill();
    items.push(el('li', {}, c, el('span', { text: p === styles.own ? `${p} (you)` : p })));
  }
  for (const name of Object.keys(LEVELS)) items.push(el('li', {}, levelIcon(name), el('span', { text: LEVELS[name].label.toLowerCase() })));
  ul.replaceChildren(...items);
}

function tick() {
  for (const span of document.querySelectorAll('[data-alert-los]')) {
    const a = state.alerts.get(span.dataset.alertLos);
    if (a && span.textContent !== losText(a)) span.textContent = losText(a);
  }
  if (state.sliderMin !== 0) renderSlider();
  else map.setVolumeTime(Date.now());
  const d = map.drawn.byParty;
  const parts = Object.keys(d)
    .sort((a, b) => styles.index(a) - styles.index(b))
    .map((p) => `${p} ${d[p]}`);
  $('track-summary').textContent = `Tracks in view: ${parts.length ? parts.join(' · ') : 'none'}`;
}

function loop() {
  map.frame(Date.now());
  requestAnimationFrame(loop);
}

function logout() {
  forgetToken();
  if (stream) stream.stop();
  location.replace(location.pathname);
}

// ---- hooks for the browser tests ---------------------------------------------------

function percentile(xs, p) {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

window.deconflict = {
  snapshot() {
    return {
      party: state.me && state.me.party,
      rulesVersion: state.rules && state.rules.version,
      conn: state.conn,
      lastEventId: stream ? stream.lastEventId : '',
      tracks: map ? map.tracks.size : 0,
      drawn: map ? map.drawn : null,
      alerts: sortedAlerts().map((a) => ({ id: a.id, level: a.level, kind: a.kind, aircraft: (a.aircraft || []).map((x) => x.aircraft) })),
      messages: [...state.messages.values()].map((m) => ({ id: m.id, thread: m.thread, kind: m.kind, state: m.state, text: m.text, ref: m.ref, acks: (m.acks || []).map((k) => k.party) })),
      eventsApplied: state.eventsApplied,
      errors: pageErrors.slice(),
      view: map ? { lon: unprojX(map.cx), lat: unprojY(map.cy), scale: map.scale } : null,
    };
  },
  // Frame time over n animation frames while the map pans a pixel each
  // frame, so that both layers are redrawn every time (the worst case): the
  // drawing cost of each frame and the interval between frames.
  // It stops early after maxMs, so that a starved machine ends the test.
  measureFrames(n, maxMs = 20000) {
    return new Promise((resolve) => {
      map.frameCosts = [];
      const stamps = [];
      const began = performance.now();
      const step = (t) => {
        stamps.push(t);
        map.panBy(stamps.length % 2 ? 1 : -1, 0);
        if (stamps.length <= n && performance.now() - began < maxMs) {
          requestAnimationFrame(step);
          return;
        }
        const costs = map.frameCosts.slice();
        const intervals = stamps.slice(1).map((x, i) => x - stamps[i]);
        resolve({
          frames: intervals.length,
          tracksDrawn: map.drawn.tracks,
          meanCostMs: costs.reduce((s, x) => s + x, 0) / Math.max(1, costs.length),
          p95CostMs: percentile(costs, 0.95),
          meanIntervalMs: intervals.reduce((s, x) => s + x, 0) / Math.max(1, intervals.length),
          p95IntervalMs: percentile(intervals, 0.95),
        });
      };
      requestAnimationFrame(step);
    });
  },
  centerOn(lon, lat, scale) {
    map.centerOn(lon, lat, 0);
    if (scale) map.scale = scale;
    map.baseDirty = true;
  },
  // Page coordinates of a place on the map, for pointer events in tests.
  screenOf(lon, lat) {
    const r = $('map').getBoundingClientRect();
    const [sx, sy] = map.toScreen(projX(lon), projY(lat));
    return { x: r.left + sx, y: r.top + sy };
  },
  // Parses an event stream given as chunks, for the parser's tests.
  parseEventStream(chunks) {
    const out = [];
    const p = new EventParser((ev) => out.push(ev));
    for (const c of chunks) p.push(c);
    return out;
  },
  dropConnection() {
    if (stream) stream.reconnect();
  },
};

// ---- boot ---------------------------------------------------------------------------

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  if (token) login(token);
});
$('logout').addEventListener('click', logout);

if (savedToken()) login(savedToken());
