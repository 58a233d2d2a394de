// The alerts panel: the open alerts, most urgent first, each with its
// level, the pair, the time to loss of separation, the closest approach,
// who has acknowledged its hotline item and the time left to do so. A click
// shows the alert on the map; the keyboard moves between alerts (arrow
// keys, Home, End) and acknowledges the focused one (A); the focused or
// clicked alert is highlighted on the map, the rest dimmed (Escape ends it).
// A conflict alert of the party's own aircraft shows its resolution: the
// suggestion and the bands of each own aircraft (resolution.js), from the
// alert's events or, when they carry none or it is old, asked for. When the
// service refuses for now (429, its budget of resolutions on demand or the
// request rate), the row says the resolution is busy and when it is asked
// again (busy.js); when it cannot be had, the row says that and why; a
// resolution shown while a newer one is delayed says how old it is.

import { $, el, bdi, reconcile, levelIcon } from './dom.js';
import { level, classLabel } from './palette.js';
import { formatDuration, formatClock, formatDistance } from './geo.js';
import { runningDeadline, deadlineAttrs, renderDeadline } from './deadline.js';
import { resolutionView, resolutionSignature } from './resolution.js';
import { askPatiently, busyNote, nowMs } from './busy.js';

// The list shows the most urgent alerts; a flood (a misconfigured feed can
// make thousands nonconforming) must not freeze the page.
const MAX_ALERT_ROWS = 100;

// Resolutions are shown (and asked for) for the most urgent alerts of the
// party's own aircraft and the one selected, and asked for at most this
// often per alert: aircraft move, so the bands age. A flood of alerts must
// not grow the page by a resolution each.
const MAX_RESOLVED_ROWS = 3;
const RESOLUTION_REFRESH_MS = 5000;

const parsedTimes = new WeakMap();
function timeMs(a) {
  let t = parsedTimes.get(a);
  if (t === undefined) {
    t = Date.parse(a.time) || 0;
    parsedTimes.set(a, t);
  }
  return t;
}

function losText(a) {
  if (a.kind !== 'conflict') return a.kind === 'volume_conflict' ? 'volume conflict' : 'outside its volumes';
  const elapsed = (Date.now() - Date.parse(a.time)) / 1000;
  const left = (a.t_in_s || 0) - elapsed;
  return left > 0 ? `LoS in ${formatDuration(left)}` : 'LoS now';
}

function aircraftLabel(ac) {
  const c = classLabel(ac);
  return `${ac.callsign || ac.aircraft}${c ? ` ${c}` : ''} (${ac.party})`;
}

const round = (x) => Math.round(x * 100) / 100;

// separationText is the separation entry the pair of a conflict is judged
// by: its classes, its detector and thresholds.
export function separationText(a) {
  const s = a.separation;
  if (!s || !s.detector) return '';
  const d = s.detector;
  const classes = (s.classes || []).join('–');
  if (d.kind === 'do365_wcv') {
    return `${classes}: DO-365 well clear, DTHR ${round(d.dthr_m)} m, ZTHR ${round(d.zthr_m)} m, TTHR ${round(d.tthr_s)} s, TCOA ${round(d.tcoa_s)} s, ${round(s.lookahead_s)} s ahead`;
  }
  return `${classes}: ${round(d.horizontal_m)} m / ${round(d.vertical_m)} m, ${round(s.lookahead_s)} s ahead`;
}

function ackSummary(m) {
  if (!m) return 'No hotline item yet';
  return (m.to || [])
    .map((p) => {
      const ack = (m.acks || []).find((k) => k.party === p);
      return ack ? `${p}: acknowledged ${formatClock(Date.parse(ack.time))}` : `${p}: waiting`;
    })
    .join(' · ');
}

function alertPair(a) {
  return (a.aircraft || []).map(aircraftLabel).join(' ↔ ') || (a.volumes || []).map((v) => `${v.id} (${v.party})`).join(' ↔ ');
}

// pairNodes is alertPair as nodes, each aircraft's callsign or id and
// party isolated (dom.js): another party's callsign cannot move the
// words around it, nor pass one aircraft for the other.
function pairNodes(a) {
  const sep = (i) => (i ? [' ↔ '] : []);
  if ((a.aircraft || []).length) {
    return a.aircraft.flatMap((ac, i) => {
      const c = classLabel(ac);
      return [...sep(i), bdi(ac.callsign || ac.aircraft), `${c ? ` ${c}` : ''} (`, bdi(ac.party), ')'];
    });
  }
  return (a.volumes || []).flatMap((v, i) => [...sep(i), bdi(v.id), ' (', bdi(v.party), ')']);
}

// describeAlert names an alert for people, as it is announced.
export function describeAlert(a) {
  return `${alertPair(a)}, ${losText(a)}`;
}

function cpaText(a) {
  return a.kind === 'conflict' ? `CPA ${formatDistance(a.d_h_cpa_m || 0)} / ${Math.round(a.d_v_cpa_m || 0)} m` : '';
}

export class AlertsPanel {
  // state is the ConsoleState, map the MapView the alerts are shown on,
  // acknowledge(messageID) sends an acknowledgment, resolution(alertID)
  // asks for an alert's resolution.
  constructor({ state, map, acknowledge, resolution }) {
    this.state = state;
    this.map = map;
    this.acknowledge = acknowledge;
    this.askResolution = resolution;
    // alert id -> { res, at, pending, done, waitUntilMs, error }
    this.resolutions = new Map();
    this.resolved = new Set(); // ids of the alerts whose resolution is shown
    this.selected = '';
    $('alerts').addEventListener('keydown', (e) => this.onKey(e));
    $('alerts').addEventListener('focusin', (e) => {
      const li = e.target.closest('li[data-alert-id]');
      if (li) this.select(li.dataset.alertId);
    });
  }

  // onKey moves the focus between alerts and acknowledges the focused one.
  onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const rows = [...$('alerts').querySelectorAll('li[data-alert-id]')];
    const li = e.target.closest('li[data-alert-id]');
    const i = rows.indexOf(li);
    const go = (j) => {
      e.preventDefault();
      const row = rows[Math.max(0, Math.min(rows.length - 1, j))];
      if (row) row.querySelector('.alert-main').focus();
    };
    switch (e.key) {
      case 'ArrowDown':
      case 'j':
        go(i + 1);
        break;
      case 'ArrowUp':
      case 'k':
        go(i - 1);
        break;
      case 'Home':
        go(0);
        break;
      case 'End':
        go(rows.length - 1);
        break;
      case 'a':
      case 'A': {
        e.preventDefault();
        const a = li && this.state.alerts.get(li.dataset.alertId);
        const m = a && this.state.alertMessage(a);
        if (m && this.state.mustAck(m)) this.acknowledge(m.id);
        break;
      }
      case 'Escape':
        e.preventDefault();
        this.select('');
        break;
      default:
    }
  }

  // select highlights alert id on the map ('' for none).
  select(id) {
    const before = this.selected;
    this.selected = id && this.state.alerts.has(String(id)) ? String(id) : '';
    this.map.selectAlert(this.selected ? this.state.alerts.get(this.selected) : null);
    for (const li of $('alerts').querySelectorAll('li[data-alert-id]')) {
      const on = li.dataset.alertId === this.selected;
      li.classList.toggle('selected', on);
      if (on) li.setAttribute('aria-current', 'true');
      else li.removeAttribute('aria-current');
    }
    // The selected alert shows its resolution.
    if (this.selected !== before && !this.rendering) this.render();
  }

  // sorted lists the open alerts, most urgent first, then newest.
  sorted() {
    return [...this.state.alerts.values()]
      .filter((a) => a.state !== 'cleared')
      .sort((a, b) => level(b.level).rank - level(a.level).rank || timeMs(b) - timeMs(a) || String(b.id).localeCompare(String(a.id)));
  }

  // ownConflict tells whether a is a conflict alert of one of the party's
  // own aircraft: only those have a resolution for the party.
  ownConflict(a) {
    const me = this.state.me;
    return a.kind === 'conflict' && me && (a.aircraft || []).some((ac) => ac.party === me.party);
  }

  // resolution is the newest resolution known of alert a: its event's or
  // the one asked for.
  resolution(a) {
    const asked = this.resolutions.get(String(a.id));
    const mine = asked && asked.res;
    const carried = a.resolution;
    if (!mine) return carried || null;
    if (!carried) return mine;
    return Date.parse(carried.time) > Date.parse(mine.time) ? carried : mine;
  }

  // refreshResolutions asks for the resolution of each listed alert of
  // the party's own aircraft whose resolution is missing or aged.
  // A refusal for now (429) is waited out before asking again (busy.js),
  // the row saying so; after any other failure the row says it, and the
  // resolution is asked again RESOLUTION_REFRESH_MS later.
  refreshResolutions(alerts) {
    if (!this.askResolution) return;
    const now = nowMs();
    for (const id of this.resolutions.keys()) if (!this.state.alerts.has(id)) this.resolutions.delete(id);
    for (const a of alerts) {
      const id = String(a.id);
      if (!this.resolved.has(id)) continue;
      const r = this.resolutions.get(id) || {};
      if (r.pending || r.done) continue;
      const known = this.resolution(a);
      const last = Math.max(r.at || 0, (known && Date.parse(known.time)) || 0);
      if ((known || r.error) && now - last < RESOLUTION_REFRESH_MS) continue;
      r.pending = true;
      r.at = now;
      this.resolutions.set(id, r);
      askPatiently('resolutions', () => this.askResolution(id), {
        wanted: () => this.resolved.has(id) && this.state.alerts.has(id),
        onWait: (untilMs) => {
          r.waitUntilMs = untilMs;
          this.render();
        },
      })
        .then((res) => {
          r.res = res;
          r.error = '';
        })
        .catch((err) => {
          if (err.noLongerWanted) return;
          // 404 or 410: the alert is gone or no longer the party's.
          if (err.status === 404 || err.status === 410) r.done = true;
          else r.error = err.message || String(err);
        })
        .finally(() => {
          r.pending = false;
          r.waitUntilMs = 0;
          r.at = nowMs();
          this.render();
        });
    }
  }

  // noteOf is what keeps alert a's resolution from being shown or current:
  // { kind: 'busy', untilMs } refused for now (429) and asked again then,
  // { kind: 'failed', error } not had and why, { kind: 'asking' } asked
  // for the first time; with shownTime, that of the resolution shown
  // meanwhile; null when the one shown is the newest that could be had.
  noteOf(a) {
    const r = this.resolutions.get(String(a.id));
    if (!r) return null;
    const shown = this.resolution(a);
    const shownTime = (shown && shown.time) || '';
    if (r.waitUntilMs) return { kind: 'busy', untilMs: r.waitUntilMs, shownTime };
    // A failure is old news once the alert's events carried a newer one.
    if (r.error && !(shown && Date.parse(shown.time) > r.at)) return { kind: 'failed', error: r.error, shownTime };
    if (!shown && r.pending) return { kind: 'asking' };
    return null;
  }

  // resolutionNote says noteOf(a) under the alert.
  resolutionNote(a) {
    const n = this.noteOf(a);
    if (!n) return null;
    const what = n.shownTime ? 'Newer resolution' : 'Resolution';
    const asOf = n.shownTime ? ` (the one shown is of ${formatClock(Date.parse(n.shownTime))})` : '';
    switch (n.kind) {
      case 'busy':
        return el('p', { class: 'resolution-note', 'data-resolution': 'busy' }, busyNote(`${what} busy`, n.untilMs), asOf);
      case 'failed':
        return el('p', { class: 'resolution-note', 'data-resolution': 'failed', text: `${what} not available: ${n.error}${asOf}; asking again shortly` });
      default:
        return el('p', { class: 'resolution-note', 'data-resolution': 'asking', text: 'Asking for the resolution…' });
    }
  }

  // resolvedOf picks the alerts whose resolution is shown: the most
  // urgent of the party's own conflicts and the selected one.
  resolvedOf(alerts) {
    const own = alerts.filter((a) => this.ownConflict(a));
    const ids = new Set(own.slice(0, MAX_RESOLVED_ROWS).map((a) => String(a.id)));
    if (own.some((a) => String(a.id) === this.selected)) ids.add(this.selected);
    return ids;
  }

  render() {
    this.rendering = true;
    try {
      this.renderList();
    } finally {
      this.rendering = false;
    }
  }

  renderList() {
    const state = this.state;
    const list = $('alerts');
    const all = this.sorted();
    const alerts = all.slice(0, MAX_ALERT_ROWS);
    this.resolved = this.resolvedOf(alerts);
    reconcile(
      list,
      alerts,
      (a) => a.id,
      (a) => {
        const m = state.alertMessage(a);
        const res = this.resolved.has(String(a.id)) ? this.resolution(a) : null;
        // The note's countdown aside, which tickWaits keeps current.
        const note = this.resolved.has(String(a.id)) ? this.noteOf(a) : null;
        return JSON.stringify([a.level, a.kind, alertPair(a), separationText(a), m && m.id, m && m.state, m && m.escalations, ackSummary(m), state.mustAck(m), Boolean(m && state.acking.has(m.id)), resolutionSignature(res), note]);
      },
      (a) => {
        const lv = level(a.level);
        const m = state.alertMessage(a);
        const escalated = m && m.state === 'escalated';
        const pair = alertPair(a);
        const badge = el('span', { class: 'badge' }, levelIcon(a.level), el('span', { text: lv.label }));
        const main = el(
          'button',
          { type: 'button', class: 'alert-main', onclick: () => this.focus(a.id) },
          badge,
          el('span', { class: 'pair' }, ...pairNodes(a)),
          el('span', { class: 'los', 'data-alert-los': String(a.id), text: losText(a) }),
          a.kind === 'conflict' ? el('span', { class: 'cpa', text: cpaText(a) }) : null,
          escalated ? el('span', { class: 'escalated-flag', text: 'ESCALATED' }) : null,
          el('span', { class: 'visually-hidden', text: 'Show on map' }),
        );
        const ackBtn = state.mustAck(m)
          ? el(
              'button',
              { type: 'button', class: 'ack', 'aria-label': `Acknowledge ${lv.label} alert ${pair}`, onclick: () => this.acknowledge(m.id), ...(state.acking.has(m.id) ? { disabled: '' } : {}) },
              state.acking.has(m.id) ? 'Acknowledging…' : 'Acknowledge',
            )
          : null;
        const d = runningDeadline(m, state.rules);
        const deadline = d ? el('span', deadlineAttrs(d)) : null;
        if (deadline) renderDeadline(deadline, Date.now());
        const selected = String(a.id) === this.selected;
        const resolved = this.resolved.has(String(a.id));
        const res = resolved ? this.resolution(a) : null;
        return el(
          'li',
          { class: `alert level-${a.level}${escalated ? ' escalated' : ''}${selected ? ' selected' : ''}`, 'data-alert-id': String(a.id), ...(selected ? { 'aria-current': 'true' } : {}) },
          main,
          a.kind === 'conflict' && a.separation ? el('div', { class: 'alert-sep', text: separationText(a) }) : null,
          res && res.aircraft && res.aircraft.length ? resolutionView(res) : null,
          resolved ? this.resolutionNote(a) : null,
          el('div', { class: 'alert-ack' }, el('span', { class: 'ack-state', text: ackSummary(m) }), deadline, ackBtn),
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
    this.refreshResolutions(alerts);
    if (this.selected && !state.alerts.has(this.selected)) this.select('');
    else if (this.selected) this.map.selectAlert(state.alerts.get(this.selected));
    $('alert-count').textContent = all.length ? `(${all.length})` : '';
    $('alerts-empty').hidden = all.length > 0;
    $('alerts-more').textContent = all.length > alerts.length ? `${all.length - alerts.length} less urgent alerts not listed.` : '';
  }

  // tick counts the times to loss of separation down, once a second.
  tick() {
    for (const span of document.querySelectorAll('[data-alert-los]')) {
      const a = this.state.alerts.get(span.dataset.alertLos);
      if (a && span.textContent !== losText(a)) span.textContent = losText(a);
    }
  }

  // focus centres the map on alert id (its aircraft, or its volume) and
  // highlights it.
  focus(id) {
    const a = this.state.alerts.get(String(id));
    if (!a) return;
    this.select(a.id);
    const pts = (a.aircraft || []).map((ac) => [ac.lon, ac.lat]);
    if (!pts.length) {
      const vol = this.state.volumes.find((v) => (a.volumes || []).some((r) => r.id === v.id));
      const fp = vol && vol.footprint;
      if (fp && fp.type === 'Circle') pts.push(fp.center);
      else if (fp && fp.type === 'Polygon') pts.push(fp.coordinates[0][0]);
      else if (fp && fp.type === 'Orbit') pts.push(...fp.points);
      else if (fp && fp.type === 'Corridor') pts.push(fp.line[0]);
    }
    if (!pts.length) return;
    const lon = pts.reduce((s, p) => s + p[0], 0) / pts.length;
    const lat = pts.reduce((s, p) => s + p[1], 0) / pts.length;
    this.map.centerOn(lon, lat);
    this.map.focus = { lon, lat, at: Date.now() };
  }
}
