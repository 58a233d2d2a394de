// Nothing may be missed: the page title and the tab's icon count the items
// waiting for this party's acknowledgment, and a new warning is announced
// in a live region (read by screen readers at once) and, when the operator
// turned it on, with a sound. The sound is off by default: a console that
// beeps by itself is turned off by the first person it annoys.

import { $, visible } from './dom.js';
import { level } from './palette.js';

const SOUND_KEY = 'deconflict.sound';
const MAX_KEPT = 50;

export class Attention {
  // state is the ConsoleState; describe(alert) names an alert for people.
  constructor({ state, describe }) {
    this.state = state;
    this.describe = describe;
    this.baseTitle = document.title;
    this.count = -1;
    this.announced = []; // what was announced, newest last (for tests)
    this.beeps = 0;
    this.audio = null;
    this.since = Date.now();
    this.icon = document.querySelector('link[rel="icon"]');
    this.plainIcon = this.icon ? this.icon.href : '';
    const box = $('sound');
    box.checked = sessionStorage.getItem(SOUND_KEY) === 'on';
    box.addEventListener('change', () => {
      sessionStorage.setItem(SOUND_KEY, box.checked ? 'on' : 'off');
      // Browsers let a page make sound only after a gesture: this is one.
      if (box.checked) this.beep(true);
    });
  }

  setTitle(base) {
    this.baseTitle = base;
    this.count = -1;
    this.update();
  }

  // waiting counts the items this party has yet to acknowledge.
  waiting() {
    let n = 0;
    for (const m of this.state.messages.values()) if (m.state !== 'acknowledged' && this.state.mustAck(m)) n++;
    return n;
  }

  // update writes the count into the title and the tab's icon.
  update() {
    const n = this.waiting();
    if (n === this.count) return;
    this.count = n;
    document.title = n ? `(${n}) ${this.baseTitle}` : this.baseTitle;
    const badge = $('ack-count');
    badge.textContent = n ? `${n} to acknowledge` : '';
    badge.hidden = n === 0;
    if (this.icon) this.icon.href = n ? badgeIcon(n) : this.plainIcon;
  }

  // alertChanged announces alert a when it is a warning that was not one
  // before (prev: the alert as it was, or undefined), raised or updated
  // since the page opened: a stream resumed from the start replays history,
  // which is not news.
  alertChanged(prev, a, eventTimeMs) {
    if (!a || a.state === 'cleared' || a.level !== 'warning') return;
    if (prev && prev.level === 'warning') return;
    if (Number.isFinite(eventTimeMs) && eventTimeMs < this.since) return;
    this.announce(`${level(a.level).label}: ${this.describe(a)}`);
  }

  announce(said) {
    const text = visible(said, 300);
    const region = $('announcer');
    // The same text twice in a row must be read twice: clear first.
    region.textContent = '';
    requestAnimationFrame(() => {
      region.textContent = text;
    });
    this.announced.push(text);
    if (this.announced.length > MAX_KEPT) this.announced.shift();
    if ($('sound').checked) this.beep(false);
  }

  // beep plays two short tones (quietly when it only confirms the switch).
  beep(quiet) {
    try {
      if (!this.audio) this.audio = new AudioContext();
      const ctx = this.audio;
      const t0 = ctx.currentTime;
      for (const [i, hz] of [880, 660].entries()) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.frequency.value = hz;
        gain.gain.setValueAtTime(quiet ? 0.05 : 0.25, t0 + i * 0.18);
        gain.gain.exponentialRampToValueAtTime(0.001, t0 + i * 0.18 + 0.16);
        osc.connect(gain).connect(ctx.destination);
        osc.start(t0 + i * 0.18);
        osc.stop(t0 + i * 0.18 + 0.17);
      }
      if (!quiet) this.beeps++;
    } catch {
      // No audio device: the live region and the title still say it.
    }
  }
}

// badgeIcon is the tab icon with the count on a red disc, as a data: URL
// (the page's security policy allows data: images, nothing external).
function badgeIcon(n) {
  const c = document.createElement('canvas');
  c.width = 32;
  c.height = 32;
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#b04600';
  ctx.beginPath();
  ctx.arc(16, 16, 15, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.font = 'bold 20px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(n > 99 ? '99' : String(n), 16, 17);
  return c.toDataURL('image/png');
}
