// How to get out of a conflict alert, as the service computes it
// (GET /v1/alerts/{id}/resolution, or the resolution carried by the alert's
// events): for each of the party's own aircraft in the alert, its part of
// the coordinated suggestion in words, and its track and altitude bands as
// a strip (free ranges plain, conflicting ones in the colour and pattern of
// the alert level their conflict would have) with the free ranges in words,
// so that nothing depends on colour alone.

import { el, bdi } from './dom.js';

// The regions of a band, DAIDALUS's names, as the alert levels they mean.
const REGIONS = {
  NONE: { label: 'free', cls: 'free' },
  FAR: { label: 'advisory', cls: 'advisory' },
  MID: { label: 'caution', cls: 'caution' },
  NEAR: { label: 'warning', cls: 'warning' },
  RECOVERY: { label: 'recovery', cls: 'recovery' },
};

function region(name) {
  return Object.hasOwn(REGIONS, name) ? REGIONS[name] : REGIONS.NEAR;
}

const deg = (x) => `${String(Math.round(((x % 360) + 360) % 360)).padStart(3, '0')}°`;
const meters = (x) => `${Math.round(x).toLocaleString('en-US')} m`;

// suggestionText says what the aircraft is suggested to do.
export function suggestionText(s) {
  if (!s) return 'No manoeuvre within the limits clears the conflict';
  switch (s.kind) {
    case 'turn':
      return `Turn ${s.turn_deg >= 0 ? 'right' : 'left'} ${Math.round(Math.abs(s.turn_deg))}° to track ${deg(s.track_deg)}`;
    case 'climb':
      return `Climb ${meters(Math.abs(s.climb_m))} to ${meters(s.alt_m)}`;
    case 'descend':
      return `Descend ${meters(Math.abs(s.climb_m))} to ${meters(s.alt_m)}`;
    default:
      return 'Maintain: the other aircraft manoeuvres';
  }
}

// freeText lists the free ranges of one dimension ('none' when every value
// is in conflict: then the recovery ranges regain separation soonest).
export function freeText(ranges, fmt) {
  const free = (ranges || []).filter((r) => r.region === 'NONE');
  if (free.length) return free.map((r) => (r.low === r.high ? fmt(r.low) : `${fmt(r.low)}–${fmt(r.high)}`)).join(', ');
  const rec = (ranges || []).filter((r) => r.region === 'RECOVERY');
  return rec.length ? `none; recovery ${rec.map((r) => `${fmt(r.low)}–${fmt(r.high)}`).join(', ')}` : 'none';
}

// strip draws one dimension's bands over [lo, hi] as a bar of segments.
function strip(name, ranges, lo, hi, fmt) {
  const span = hi - lo || 1;
  const bar = el('span', { class: 'band-strip', 'aria-hidden': 'true' });
  for (const r of ranges || []) {
    const seg = el('span', { class: `band band-${region(r.region).cls}`, title: `${fmt(r.low)}–${fmt(r.high)} ${region(r.region).label}` });
    seg.style.left = `${(100 * (Math.max(r.low, lo) - lo)) / span}%`;
    seg.style.width = `${(100 * (Math.min(r.high, hi) - Math.max(r.low, lo))) / span}%`;
    bar.append(seg);
  }
  return el(
    'div',
    { class: 'band-row', 'data-band': name },
    el('span', { class: 'band-name', text: name }),
    bar,
    el('span', { class: 'band-free', text: `free ${freeText(ranges, fmt)}` }),
  );
}

// span is the extent of a dimension's ranges.
function span(ranges, lo, hi) {
  if (!ranges || !ranges.length) return [lo, hi];
  return [Math.min(...ranges.map((r) => r.low)), Math.max(...ranges.map((r) => r.high))];
}

// resolutionSignature changes when what resolutionView shows changes.
export function resolutionSignature(res) {
  if (!res) return '';
  return JSON.stringify((res.aircraft || []).map((ac) => [ac.aircraft, ac.suggestion, ac.bands && ac.bands.track_deg, ac.bands && ac.bands.alt_m]));
}

// resolutionView is the block shown under an alert: one entry per own
// aircraft of the resolution.
export function resolutionView(res) {
  const items = (res.aircraft || []).map((ac) => {
    const b = ac.bands || {};
    const [altLo, altHi] = span(b.alt_m, 0, 15000);
    return el(
      'div',
      { class: 'resolution-aircraft', 'data-aircraft': ac.aircraft },
      el(
        'p',
        { class: 'suggestion', 'data-kind': ac.suggestion ? ac.suggestion.kind : 'none' },
        el('strong', {}, bdi(ac.callsign || ac.aircraft), ': '),
        suggestionText(ac.suggestion),
        ac.intruder ? el('span', { class: 'intruder' }, ' (intruder ', bdi(ac.intruder.callsign || ac.intruder.aircraft), ', ', bdi(ac.intruder.party), ')') : null,
      ),
      strip('Track', b.track_deg, 0, 360, deg),
      strip('Altitude', b.alt_m, altLo, altHi, meters),
    );
  });
  // Not a list: the alert list's own items are its only li elements.
  return el('div', { class: 'resolution', role: 'group', 'aria-label': 'Resolution' }, ...items);
}
