// The console of one party: log in, then keep the map, the alerts and the
// hotline in step with the service. Tracks are polled about once a second
// (they are not in the durable event stream); alerts, messages,
// acknowledgments, escalations and volume changes arrive on the event
// stream, which opens with a snapshot of the state (GET /v1/events?snapshot=1,
// however long the history) and resumes from the last event id after a lost
// connection.
// This file logs in, loads and streams into the shared ConsoleState
// (state.js) and wires the panels: the map (map.js), the alerts (alerts.js),
// the hotline (hotline.js), the proposals of the rules (rules.js), each of
// which renders from that state, and the import of airspace files
// (importer.js).
//
// Every read goes through busy.js's askPatiently: a refusal for now (429)
// is waited out as its Retry-After says before the same thing is asked
// again, and the page says what is delayed and until when (the
// connection's line for the tracks and the event stream, the delays line
// for the volumes, the rules and the record, the alert's row for its
// resolution); a read that failed otherwise says so beside what is still
// shown, and when that was loaded.

import { api, savedToken, saveToken, forgetToken, signAs } from './api.js';
import { importKey, keyOf } from './sign.js';
import { verifyCheckpoint, pinLogKey } from './record.js';
import { EventStream, EventParser } from './sse.js';
import { MapView } from './map.js';
import { AlertsPanel, describeAlert } from './alerts.js';
import { HotlinePanel } from './hotline.js';
import { ImportPanel } from './importer.js';
import { RulesPanel } from './rules.js';
import { ConsoleState } from './state.js';
import { Attention } from './attention.js';
import { tickDeadlines, runningDeadline, countdown } from './deadline.js';
import { $, el, bdi, levelIcon, markIcon, setText } from './dom.js';
import { PartyStyles, LEVELS } from './palette.js';
import { formatDuration, formatTime, formatClock, projX, projY, unprojX, unprojY } from './geo.js';
import { askPatiently, busyNote, tickWaits, useManualClock, waitText, delayed, failed, waitMsOf, retryAfterSeconds } from './busy.js';
import { say, said } from './live.js';
import { itemText } from './threads.js';

const TRACK_POLL_MS = 1000;
const REFRESH_MS = 150;
const VOLUME_POLL_MS = 15000;
const SLIDER_BACK_MIN = 360;
const SLIDER_AHEAD_MIN = 1440;

const state = new ConsoleState();
const styles = new PartyStyles();

// Anything that goes wrong in the page is kept for the browser tests, which
// fail on it: script errors and anything the security policy blocked.
const pageErrors = [];
window.addEventListener('error', (e) => pageErrors.push(`error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => pageErrors.push(`unhandled rejection: ${e.reason}`));
document.addEventListener('securitypolicyviolation', (e) => pageErrors.push(`blocked by ${e.violatedDirective}: ${e.blockedURI}`));
let map = null;
let alerts = null;
let hotline = null;
let importer = null;
let rulesPanel = null;
let attention = null;
let stream = null;
// The event ids the last snapshot is the state of: the alert and hotline
// events at or before them are in it already, and are not applied again
// (on a stream resumed within the few events after it). When the snapshot
// could not carry every open item of the party (messages_truncated), only
// the events of the items it holds (carried) are.
let covered = { alerts: 0, messages: 0, carried: null };
const ALERT_EVENTS = new Set(['alert_raised', 'alert_updated', 'alert_cleared']);
const MESSAGE_EVENTS = new Set(['message', 'ack', 'escalated']);
let trackTimer = 0;
let refreshTimer = 0;
let trackInFlight = false;

// ---- login ----------------------------------------------------------------

async function login(token) {
  saveToken(token);
  try {
    const me = await askPatiently('me', () => api.me(), {
      onWait: (untilMs) => {
        $('login-wait').replaceChildren(busyNote('The service is busy: logging in', untilMs));
        say(`The service is busy: logging in, ${waitText(untilMs)}`);
      },
    });
    if (!me || !me.party) throw new Error('the service did not say which party this token is');
    state.me = me;
  } catch (err) {
    forgetToken();
    $('login-wait').textContent = '';
    setText($('login-error'), err.status === 401 ? 'This token is not valid.' : `Cannot log in: ${err.message}`);
    return;
  }
  $('login-error').textContent = '';
  $('login-wait').textContent = '';
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
  if (!state.me.operator) {
    signAs(state.me.party);
    $('signing').hidden = false;
    keyOf(state.me.party).then((k) => {
      if (k) $('key-status').textContent = `keyid ${k.keyid.slice(0, 10)}…`;
    });
  }
  loadLogStatus();
  setInterval(loadLogStatus, LOG_POLL_MS);
  attention = new Attention({ state, describe: describeAlert });
  attention.setTitle(`deconflict · ${state.me.party}`);
  $('sound-label').hidden = false;

  map = new MapView({ container: $('map'), base: $('map-base'), live: $('map-live'), tooltip: $('tooltip'), details: $('map-details'), styles });
  hotline = new HotlinePanel({ state, styles, refresh });
  alerts = new AlertsPanel({ state, map, acknowledge: (id) => hotline.acknowledge(id), resolution: (id) => api.resolution(id) });
  importer = new ImportPanel({ map, onDeclared: loadVolumes, showTime: showVolumesAt });
  rulesPanel = new RulesPanel({ state });
  loadAtlas();
  bindControls();
  renderLegend();
  loadRules();
  rulesPanel.load();
  loadVolumes();
  setInterval(loadVolumes, VOLUME_POLL_MS);
  pollTracks();
  setInterval(tick, 1000);
  requestAnimationFrame(loop);

  // With no event to resume from, or one far behind, the server opens the
  // stream with a snapshot of the state instead of replaying the history.
  stream = new EventStream({ url: '/v1/events?snapshot=1', onEvent: onEvent, onState: onStreamState });
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

// ---- the record ------------------------------------------------------------

const LOG_POLL_MS = 5000;
let lastRecordCheck = null;
let recordWasUnverified = false;
let logLoading = false;

// loadLogStatus shows who cosigned the latest checkpoint of the record and
// a red banner for each party whose witness has not verified it, as this
// browser verifies them (record.js): the log's signature with the log key
// pinned here, each witness's cosignature with the key the agreed rules
// give it, fresh within the rules' witness_max_age_s.
async function loadLogStatus() {
  if (logLoading) return;
  logLoading = true;
  let key;
  let note;
  try {
    [key, note] = await askPatiently('record', () => Promise.all([api.logKey(), api.logCheckpoint()]), { onWait: (untilMs) => delayed('record', 'Record check', untilMs) });
    delayed('record', '');
    if (!state.rules) {
      state.rules = await askPatiently('rules', () => api.rules(), { onWait: (untilMs) => delayed('rules', 'Rules', untilMs) });
      delayed('rules', '');
    }
  } catch (err) {
    // The line shown stays, said to be of its time.
    failed('record', lastRecordCheck ? `Record check of ${formatClock(lastRecordCheck.checkedAtMs)}` : 'Record check', err);
    return;
  } finally {
    logLoading = false;
  }
  const witnesses = (state.rules && state.rules.witnesses) || [];
  const maxAgeS = (state.rules && state.rules.witness_max_age_s) || 600;
  let res;
  if (!pinLogKey(key.origin, key.vkey)) {
    res = { ok: false, error: `the log's key changed (now ${key.vkey})`, unverified: witnesses.map((w) => w.party), cosigned: [] };
  } else {
    res = await verifyCheckpoint(note, key.vkey, witnesses, maxAgeS, Date.now());
  }
  lastRecordCheck = { ...res, checkedAtMs: Date.now() };
  // The line changes with the record's size and time: it is not a live
  // region. The banner is (role=alert), so it is written only when what
  // it says changes: written again, the same words would be read again.
  const line = $('record-status');
  line.hidden = false;
  let status;
  if (!res.ok) {
    status = `record not verified: ${res.error}`;
  } else if (res.cosigned.length) {
    const latest = Math.max(...res.cosigned.map((c) => c.timeMs));
    status = `record cosigned by ${res.cosigned.map((c) => c.party).join(', ')} at size ${res.size}, ${formatClock(latest)}`;
  } else {
    status = `record at size ${res.size}, cosigned by no witness`;
  }
  setText(line, status);
  const banner = $('record-banner');
  const bannerHidden = res.unverified.length === 0 && res.ok;
  const bannerText = bannerHidden ? '' : res.unverified.length ? res.unverified.map((p) => `record not verified by ${p}`).join(' · ') : `record not verified: ${res.error}`;
  if (!bannerHidden && banner.hidden) banner.textContent = '';
  if (banner.hidden !== bannerHidden) banner.hidden = bannerHidden;
  setText(banner, bannerText);
  if (bannerHidden && recordWasUnverified) say('The record is verified again');
  recordWasUnverified = !bannerHidden;
}

async function onKeyFile(ev) {
  const file = ev.target.files && ev.target.files[0];
  if (!file) return;
  try {
    const keyid = await importKey(state.me.party, await file.text());
    $('key-status').textContent = `keyid ${keyid.slice(0, 10)}…`;
  } catch (err) {
    setText($('key-status'), `not an Ed25519 PKCS#8 key: ${err.message}`);
  }
  ev.target.value = '';
}

async function loadRules() {
  try {
    state.rules = await askPatiently('rules', () => api.rules(), { onWait: (untilMs) => delayed('rules', 'Rules', untilMs) });
    delayed('rules', '');
    $('rules-version').textContent = `v${state.rules.version}`;
  } catch (err) {
    if (!state.rules) $('rules-version').textContent = 'unknown';
    failed('rules', 'Rules', err);
  }
}

// ---- data -----------------------------------------------------------------

// volumesLoading: a load runs (or waits out a refusal); volumesAgain: one
// was asked for meanwhile, and runs after it (a change it may not show).
let volumesLoading = false;
let volumesAgain = false;
let volumesAtMs = 0;

async function loadVolumes() {
  if (volumesLoading) {
    volumesAgain = true;
    return;
  }
  volumesLoading = true;
  try {
    const res = await askPatiently(
      'volumes',
      () => {
        const now = Date.now();
        const from = new Date(now - SLIDER_BACK_MIN * 60000).toISOString();
        const to = new Date(now + SLIDER_AHEAD_MIN * 60000).toISOString();
        return api.volumes(from, to);
      },
      { onWait: (untilMs) => delayed('volumes', volumesAtMs ? `Volumes of ${formatClock(volumesAtMs)} shown, newer` : 'Volumes', untilMs) },
    );
    state.volumes = (res && res.volumes) || [];
    volumesAtMs = Date.now();
    delayed('volumes', '');
    for (const v of state.volumes) if (styles.see(v.party)) renderLegend();
    map.setVolumes(state.volumes, sliderTime());
  } catch (err) {
    // Kept as it was, said to be of its time; the next poll tries again.
    failed('volumes', volumesAtMs ? `Volumes of ${formatClock(volumesAtMs)} shown, newer` : 'Volumes', err);
  } finally {
    volumesLoading = false;
  }
  if (volumesAgain) {
    volumesAgain = false;
    loadVolumes();
  }
}

async function pollTracks() {
  clearTimeout(trackTimer);
  if (!trackInFlight) {
    trackInFlight = true;
    try {
      const res = await askPatiently('tracks', () => api.tracks(map.viewBBox()), {
        onWait: (untilMs) => {
          state.tracksWaitUntilMs = untilMs;
          renderConn();
        },
      });
      const list = (res && res.tracks) || [];
      map.setTracks(list);
      let newParty = false;
      for (const t of list) newParty = styles.see(t.party) || newParty;
      if (newParty) {
        renderLegend();
        hotline.renderKnownParties();
      }
      state.trackPollOK = true;
    } catch (err) {
      state.trackPollOK = false;
      if (err.status === 401) logout();
    } finally {
      trackInFlight = false;
      state.tracksWaitUntilMs = 0;
      renderConn();
    }
  }
  trackTimer = setTimeout(pollTracks, TRACK_POLL_MS);
}

// applySnapshot replaces the alerts and the hotline items by the stream's
// snapshot, the state as of the events it names; the rules and volumes,
// which are not in it, are loaded again (a snapshot after the first comes
// after a long absence or a server of another history).
function applySnapshot(snap) {
  state.snapshots++;
  state.alerts.clear();
  for (const a of snap.alerts || []) state.alerts.set(String(a.id), a);
  state.clearMessages();
  let newParty = false;
  for (const m of snap.messages || []) {
    state.putMessage(m);
    for (const p of [m.from, ...(m.to || [])]) if (p !== 'deconflict') newParty = styles.see(p) || newParty;
  }
  if (newParty) hotline.renderKnownParties();
  covered = {
    alerts: snap.alerts_after || 0,
    messages: snap.messages_after || 0,
    carried: snap.messages_truncated ? new Set((snap.messages || []).map((m) => m.id)) : null,
  };
  if (state.snapshots > 1) {
    rulesPanel.load();
    loadRules();
    loadVolumes();
  }
  refresh();
}

function onStreamState(s, attempt, untilMs = 0) {
  state.conn = s;
  state.attempt = attempt;
  state.streamWaitUntilMs = untilMs;
  if (s === 'unauthorized') logout();
  renderConn();
}

function onEvent(kind, ev) {
  if (kind === 'snapshot') {
    if (ev && ev.data) applySnapshot(ev.data);
    return;
  }
  const id = ev && Number(ev.id);
  if (ALERT_EVENTS.has(kind) && id <= covered.alerts) return;
  if (MESSAGE_EVENTS.has(kind) && id <= covered.messages && (!covered.carried || covered.carried.has(ev.data && ev.data.id))) return;
  apply(kind, ev);
  // Events come in bursts: draw the lists once per burst.
  if (!refreshTimer) {
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      refresh();
    }, REFRESH_MS);
  }
}

function apply(kind, ev) {
  const data = ev && ev.data;
  state.eventsApplied++;
  switch (kind) {
    case 'alert_raised':
    case 'alert_updated':
      if (data && data.id !== undefined) {
        const prev = state.alerts.get(String(data.id));
        state.alerts.set(String(data.id), data);
        attention.alertChanged(prev, data, Date.parse(ev.time));
      }
      break;
    case 'alert_cleared':
      if (data && data.id !== undefined) state.alerts.delete(String(data.id));
      break;
    case 'message':
    case 'ack':
    case 'escalated':
      if (data && data.id !== undefined) {
        const prev = state.messages.get(data.id) || null;
        // A stream resumed from long ago replays history, which is not news.
        if (!(Date.parse(ev.time) < attention.since)) say(hotline.newsOf(prev, data));
        state.putMessage(data);
        for (const p of [data.from, ...(data.to || [])]) if (p !== 'deconflict' && styles.see(p)) hotline.renderKnownParties();
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
    case 'rules_proposed':
    case 'rules_answered':
      rulesPanel.put(data);
      break;
    default:
      break;
  }
}

function refresh() {
  map.setAlerts([...state.alerts.values()]);
  alerts.render();
  hotline.render();
  rulesPanel.render();
  attention.update();
}

// ---- connection -------------------------------------------------------------

// renderConn says how live the page is: the event stream, and the tracks.
// A wait of a refusal (429) is counted down (busy.js's tickWaits).
function renderConn() {
  let s = state.conn;
  if (s === 'live' && (!state.trackPollOK || state.tracksWaitUntilMs)) s = 'degraded';
  if (s === 'reconnecting' && state.streamWaitUntilMs) s = 'busy';
  const what = {
    connecting: 'Connecting…',
    live: 'Live',
    degraded: state.tracksWaitUntilMs ? 'Live events, tracks busy' : 'Live events, tracks delayed',
    reconnecting: `Connection lost, reconnecting${state.attempt > 1 ? ` (attempt ${state.attempt})` : ''}…`,
    busy: 'Events busy',
    unauthorized: 'Logged out',
    offline: 'Not connected',
  }[s];
  const untilMs = s === 'degraded' ? state.tracksWaitUntilMs : s === 'busy' ? state.streamWaitUntilMs : 0;
  const c = $('conn');
  if (c.dataset.state !== s) c.dataset.state = s;
  // The line is not a live region: its countdown changes every second.
  // What it says is said once when it changes.
  const t = $('conn-text');
  if (t.dataset.what !== what || Number(t.dataset.until || 0) !== untilMs) {
    if (t.dataset.what !== what && t.dataset.what !== undefined) say(untilMs ? `${what}, ${waitText(untilMs)}` : what);
    t.dataset.what = what;
    t.dataset.until = String(untilMs);
    t.replaceChildren(untilMs ? busyNote(what, untilMs) : what);
  }
}

// ---- controls, legend, loop -----------------------------------------------------

function sliderTime() {
  return Date.now() + state.sliderMin * 60000;
}

function renderSlider() {
  const text = state.sliderMin === 0 ? 'now' : `${formatTime(sliderTime())} (${state.sliderMin > 0 ? '+' : ''}${formatDuration(state.sliderMin * 60)} h)`;
  if ($('time-label').textContent !== text) $('time-label').textContent = text;
  if ($('time-slider').getAttribute('aria-valuetext') !== text) $('time-slider').setAttribute('aria-valuetext', text);
}

// showVolumesAt moves the time slider to a moment (the slider's own steps
// are 5 minutes; the map shows the moment itself).
function showVolumesAt(ms) {
  const slider = $('time-slider');
  state.sliderMin = Math.max(Number(slider.min), Math.min(Number(slider.max), (ms - Date.now()) / 60000));
  slider.value = String(Math.round(state.sliderMin / 5) * 5);
  map.setVolumeTime(sliderTime());
  renderSlider();
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
  $('compose').addEventListener('submit', (e) => hotline.compose(e));
  $('compose-new-thread').addEventListener('click', () => hotline.newThread());
  const filter = () => map.setFilter({ own: $('show-own').checked, others: $('show-others').checked, conflictingOnly: $('show-conflicting').checked });
  for (const id of ['show-own', 'show-others', 'show-conflicting']) $(id).addEventListener('change', filter);
  $('map-details-close').addEventListener('click', () => map.unpick());
  $('map').addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    map.unpick();
    alerts.select('');
  });
  renderSlider();
}

function renderLegend() {
  const ul = $('legend');
  const items = [];
  for (const p of styles.order) {
    const c = markIcon(styles.shape(p), styles.colour(p), 8, 5);
    items.push(el('li', {}, c, el('span', {}, bdi(p), p === styles.own ? ' (you)' : null)));
  }
  for (const name of Object.keys(LEVELS)) items.push(el('li', {}, levelIcon(name), el('span', { text: LEVELS[name].label.toLowerCase() })));
  ul.replaceChildren(...items);
}

function tick() {
  alerts.tick();
  tickDeadlines(document, Date.now());
  map.renderDetails();
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
  // useManualClock makes the waits of refusals (busy.js) run on a clock
  // that moves only by advanceClock(ms), so that a test proves what is
  // asked before and after a Retry-After without timing; refresh draws the
  // lists again (as an event would).
  useManualClock() {
    const advance = useManualClock();
    this.advanceClock = (ms) => {
      advance(ms);
      tickWaits(document);
    };
  },
  refresh: () => refresh(),
  // The wait after a 429 with a Retry-After header (null: none).
  retryWaitMs: (header) => waitMsOf({ status: 429, retryAfterS: retryAfterSeconds(header) }),
  // verifyCheckpoint is record.js's check, for the tests to compare with
  // the Go verifier; recordCheck the console's latest result.
  verifyCheckpoint,
  formatClock,
  recordCheck: () => lastRecordCheck,
  snapshot() {
    return {
      party: state.me && state.me.party,
      rulesVersion: state.rules && state.rules.version,
      proposals: rulesPanel ? [...rulesPanel.proposals.values()].map((p) => ({ version: p.version, waitingFor: p.waiting_for, acceptedBy: p.accepted_by })) : [],
      conn: state.conn,
      lastEventId: stream ? stream.lastEventId : '',
      tracks: map ? map.tracks.size : 0,
      trackKeys: map ? [...map.tracks.keys()] : [],
      drawn: map ? map.drawn : null,
      importItems: importer ? importer.items.map((it, i) => ({ name: it.name, status: (importer.results.get(i) || it).status, line: it.line })) : [],
      sliderMin: state.sliderMin,
      alerts: (alerts ? alerts.sorted() : []).map((a) => ({ id: a.id, level: a.level, kind: a.kind, aircraft: (a.aircraft || []).map((x) => x.aircraft) })),
      messages: [...state.messages.values()].map((m) => ({ id: m.id, thread: m.thread, kind: m.kind, state: m.state, text: m.text, ref: m.ref, acks: (m.acks || []).map((k) => k.party), puts: state.messagePuts.get(m.id) })),
      eventsApplied: state.eventsApplied,
      snapshots: state.snapshots,
      errors: pageErrors.slice(),
      said: said(),
      title: document.title,
      waiting: attention ? attention.waiting() : 0,
      announced: attention ? attention.announced.slice() : [],
      beeps: attention ? attention.beeps : 0,
      selectedAlert: alerts ? alerts.selected : '',
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
      map.frameTracks = [];
      map.labelCosts = [];
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
        const tracks = map.frameTracks.slice();
        const labels = map.labelCosts.slice();
        const intervals = stamps.slice(1).map((x, i) => x - stamps[i]);
        resolve({
          frames: intervals.length,
          tracksDrawn: map.drawn.tracks,
          // The frames drawn, and the fewest tracks any of them drew.
          framesDrawn: costs.length,
          minTracksDrawn: tracks.length ? Math.min(...tracks) : 0,
          meanCostMs: costs.reduce((s, x) => s + x, 0) / Math.max(1, costs.length),
          p50CostMs: percentile(costs, 0.5),
          p95CostMs: percentile(costs, 0.95),
          // The part of each frame spent placing and drawing labels.
          p50LabelMs: percentile(labels, 0.5),
          p95LabelMs: percentile(labels, 0.95),
          meanIntervalMs: intervals.reduce((s, x) => s + x, 0) / Math.max(1, intervals.length),
          p95IntervalMs: percentile(intervals, 0.95),
        });
      };
      requestAnimationFrame(step);
    });
  },
  // The party/aircraft keys of the tracks the last frame drew.
  drawnTrackKeys() {
    return map.screenTracks.map((tr) => tr.key);
  },
  // Renders every countdown on the page as at nowMs (the next tick puts
  // them back at the present), to see how a deadline looks as it nears.
  renderDeadlinesAt(nowMs) {
    tickDeadlines(document, nowMs);
  },
  // Where the i-th aircraft drawn is on the page, for clicks in tests.
  drawnAircraft(i) {
    const r = $('map').getBoundingClientRect();
    const tr = map.screenTracks[i];
    return tr ? { x: r.left + map.screen[2 * i], y: r.top + map.screen[2 * i + 1], callsign: tr.t.callsign || tr.t.aircraft } : null;
  },
  // Labels on or off, to measure what placing them costs.
  labels(on) {
    map.labelsOn = on;
    if (!on) map.drawn.labels = [];
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
  // The hotline's threads named, stated and ordered as the panel shows
  // them, for messages as the API gives them, seen by party me.
  nameThreads(messages, me, alertList = [], volumes = [], nowMs = Date.now()) {
    const s = new ConsoleState();
    s.me = { party: me };
    for (const m of messages) s.putMessage(m);
    for (const a of alertList) s.alerts.set(String(a.id), a);
    s.volumes = volumes;
    const panel = new HotlinePanel({ state: s, styles, refresh() {} });
    return panel.threads(nowMs).map((t) => ({ key: t.key, name: t.name, state: t.status.key, label: t.status.label }));
  },
  // What a person reads of hotline item m (null: its recorded text).
  itemText: (m, nowMs = Date.now()) => itemText(m, nowMs),
  // The countdown to message m's running deadline at nowMs.
  countdown(m, rules, nowMs) {
    const d = runningDeadline(m, rules);
    return d ? countdown(d, nowMs) : null;
  },
  // Page coordinates where a track (party/aircraft) is drawn now, for
  // pointer events in tests; null when there is no such track.
  trackScreen(key) {
    const tr = map.tracks.get(key);
    if (!tr) return null;
    const dt = Math.max(0, Math.min(30, (Date.now() - tr.timeMs) / 1000));
    const r = $('map').getBoundingClientRect();
    const [sx, sy] = map.toScreen(tr.x + tr.vx * dt, tr.y + tr.vy * dt);
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
$('key-file').addEventListener('change', onKeyFile);
// The waits of refusals shown anywhere (the login's too) count down.
setInterval(() => tickWaits(document), 1000);

if (savedToken()) login(savedToken());
