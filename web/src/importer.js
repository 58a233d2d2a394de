// Importing an airspace file: a GeoJSON or OpenAir file dropped onto the map
// (or chosen with the Import button) is sent to POST /v1/volumes/preview,
// which writes nothing; the volumes it would declare are drawn on the map
// and listed with their conflicts and refusals (reason and line); Declare
// sends each one that conflicts with nothing as an ordinary volume write,
// and the list then says what became of each.
//
// A conflicting airspace (in the preview, or refused with a 409 when
// declared) lists its alternatives, the nearest conflict-free variants the
// service offers (the band moved up or down, the window later or earlier,
// or both). Pointing at one draws it on the map and moves the time slider
// into its window; one click declares it.
//
// When the party's budget of alternatives searches is spent, the service
// judges the write as ever but omits the alternatives, saying
// "alternatives_omitted":"budget": the list then says plainly that they
// were not searched (not that there is no conflict-free variant) and offers
// to search again (POST /v1/volumes/alternatives), asking again by itself
// after the Retry-After while the budget is still spent (429), the list
// saying so and when, or saying that asking again cannot help when the
// search costs more than the budget ever holds (422 beyond-budget).
//
// Declaring, a write refused with 429 (the party's budget of volume writes,
// counted by footprint positions, or its request rate, on the replica that
// answered: nothing was written) is sent again after its Retry-After, the
// list saying it waits and until when, for at most MAX_WAIT_MS in all an
// item: a file of large footprints spends the budget faster than it
// refills, and its last items were refused. A preview refused with 429 is
// asked again after its Retry-After too, while its file is the one shown.
// The waits are busy.js's, as every read of the console's.
//
// Each write of a volume (an item of the file, or an alternative) carries
// an Idempotency-Key of its own, the same at every send of it (writes.js):
// after a refusal for now, a lost answer, or while the first is still
// served. A volume is declared once however often it is sent; the buttons
// that declare are disabled while a declaration is in flight.

import { api } from './api.js';
import { $, el, bdi, setText } from './dom.js';
import { formatDuration, formatTime } from './geo.js';
import { askPatiently, busyNote, waitText } from './busy.js';
import { writeOnce } from './writes.js';
import { say } from './live.js';

const DEFAULT_WINDOW_MS = 2 * 3600 * 1000;

// MAX_WAIT_MS bounds the waits on 429 of one item's write (as the command
// line's import does): past it the item is refused with the 429.
const MAX_WAIT_MS = 10 * 60 * 1000;

export class ImportPanel {
  // map: the MapView; onDeclared: called once volumes were declared;
  // showTime(ms): moves the time slider to a moment.
  constructor({ map, onDeclared, showTime }) {
    this.map = map;
    this.onDeclared = onDeclared;
    this.showTime = showTime;
    this.file = null; // { name, format, text }
    this.items = [];
    this.results = new Map(); // item index in this.items -> { status, detail, alternatives, omitted, input }
    // item index -> a search of alternatives asked again:
    // { busy, waitUntilMs, refusal, alternatives, error, beyond }
    this.searches = new Map();
    this.busy = false;
    this.bind();
  }

  bind() {
    const target = $('map');
    target.addEventListener('dragover', (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
      target.classList.add('drop');
    });
    target.addEventListener('dragleave', () => target.classList.remove('drop'));
    target.addEventListener('drop', (e) => {
      e.preventDefault();
      target.classList.remove('drop');
      const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
      if (f) this.load(f);
    });
    $('import-open').addEventListener('click', () => $('import-file').click());
    $('import-file').addEventListener('change', (e) => {
      const f = e.target.files && e.target.files[0];
      if (f) this.load(f);
      e.target.value = '';
    });
    $('import-declare').addEventListener('click', () => this.declare());
    $('import-cancel').addEventListener('click', () => this.close());
    $('import-window').addEventListener('change', () => this.preview());
  }

  async load(file) {
    const text = await file.text();
    // GeoJSON is a JSON object; anything else is read as OpenAir.
    const format = /\.(geo)?json$/i.test(file.name) || text.trimStart().startsWith('{') ? 'geojson' : 'openair';
    this.file = { name: file.name, format, text };
    const start = new Date(Math.floor(Date.now() / 60000) * 60000);
    $('import-start').value = start.toISOString().slice(0, 16);
    $('import-end').value = new Date(start.getTime() + DEFAULT_WINDOW_MS).toISOString().slice(0, 16);
    $('import-panel').hidden = false;
    await this.preview();
  }

  // The window for airspaces without activation times, as the inputs say
  // (UTC, minutes).
  window() {
    const t = (id) => {
      const v = $(id).value;
      const d = v ? new Date(`${v}:00Z`) : null;
      return d && !Number.isNaN(d.getTime()) ? d.toISOString().replace('.000Z', 'Z') : '';
    };
    const q = {};
    if (t('import-start')) q.start = t('import-start');
    if (t('import-end')) q.end = t('import-end');
    return q;
  }

  async preview() {
    if (!this.file) return;
    this.results.clear();
    this.searches.clear();
    $('import-title').replaceChildren('Import ', bdi(this.file.name));
    $('import-error').textContent = '';
    const file = this.file;
    const query = this.window();
    try {
      const res = await askPatiently('previews', () => api.preview(file.format, query, file.text), {
        wanted: () => this.file === file,
        onWait: (untilMs) => {
          $('import-wait').replaceChildren(busyNote('Preview busy', untilMs));
          say(`Preview busy, ${waitText(untilMs)}`);
        },
      });
      $('import-wait').textContent = '';
      $('import-error').textContent = '';
      this.items = (res && res.items) || [];
    } catch (err) {
      if (err.noLongerWanted) return;
      $('import-wait').textContent = '';
      this.items = [];
      setText($('import-error'), err.problem && err.problem.line ? `Line ${err.problem.line}: ${err.message}` : err.message);
    }
    this.map.setPreview(this.items);
    if (this.items.some((it) => it.input)) this.fitPreview();
    this.render();
  }

  fitPreview() {
    const pts = [];
    for (const p of this.map.preview) for (const r of p.rings) for (const q of r) pts.push(q);
    if (pts.length) this.map.fitWorld(pts);
  }

  render() {
    const ok = this.items.filter((it) => it.status === 'ok').length;
    const rows = this.items.map((it, i) => {
      const r = this.results.get(i);
      const status = r ? r.status : it.status === 'ok' ? 'would declare' : it.status;
      let detail = r ? r.detail : '';
      if (!r && it.status === 'refused') detail = it.reason;
      if (!r && it.status === 'conflicting') {
        detail = `with ${(it.conflicts || []).map((c) => `${c.party} ${c.id}`).join(', ')}`;
      }
      if (!r && it.input) detail = `${detail ? `${detail}; ` : ''}${formatTime(Date.parse(it.input.start))} to ${formatTime(Date.parse(it.input.end))}`;
      const where = it.feature !== undefined && it.feature !== null ? `feature ${it.feature}` : `line ${it.line}`;
      const conflicting = status === 'conflicting';
      const search = conflicting ? this.searches.get(i) : undefined;
      const found = search && search.alternatives;
      const alts = conflicting ? (found || (r ? r.alternatives : it.alternatives)) || [] : [];
      const omitted = conflicting && !found ? (r ? r.omitted : it.alternatives_omitted) : '';
      if (r && r.status === 'declared' && r.omitted) detail = `${detail}; ${omittedText(r.omitted)}`;
      return el(
        'li',
        { class: `import-item status-${status.replace(' ', '-')}`, 'data-item': String(i) },
        el('span', { class: 'where', text: where }),
        el('strong', {}, it.name ? bdi(it.name) : '(no name)'),
        el('span', { class: 'status', text: status }),
        el('span', { class: 'detail', text: detail }),
        alts.length ? this.alternativesList(i, alts) : null,
        found && !alts.length ? el('p', { class: 'alternatives-none', text: 'Searched again: no conflict-free alternative found.' }) : null,
        omitted ? this.omittedNote(i, omitted, r ? r.input : it.input, search) : null,
      );
    });
    $('import-items').replaceChildren(...rows);
    const counts = {};
    for (let i = 0; i < this.items.length; i++) {
      const r = this.results.get(i);
      const s = r ? r.status : this.items[i].status;
      counts[s] = (counts[s] || 0) + 1;
    }
    $('import-summary').textContent = Object.keys(counts)
      .map((k) => `${counts[k]} ${k === 'ok' ? 'to declare' : k}`)
      .join(', ');
    const done = this.results.size > 0;
    $('import-declare').disabled = this.busy || done || ok === 0;
    $('import-declare').textContent = ok === 1 ? 'Declare 1 volume' : `Declare ${ok} volumes`;
    $('import-cancel').textContent = done ? 'Close' : 'Cancel';
  }

  async declare() {
    if (this.busy) return;
    this.busy = true;
    this.render();
    let declared = 0;
    for (let i = 0; i < this.items.length; i++) {
      const it = this.items[i];
      if (it.status !== 'ok') continue;
      try {
        const res = await this.sendWaiting(i, (key) => api.createVolume(it.input, key));
        this.setResult(i, declaredResult(res, ''));
        declared++;
      } catch (err) {
        this.setResult(i, refusedResult(err, it.input));
      }
      this.render();
    }
    this.busy = false;
    this.map.setPreview([]);
    this.render();
    say(`Import: ${$('import-summary').textContent}`);
    if (declared) this.onDeclared();
  }

  // sendWaiting runs write(key), the write of item i with its
  // Idempotency-Key, again after the Retry-After of each 429 (nothing was
  // written), saying so in the list, until it is answered otherwise or the
  // waits would pass MAX_WAIT_MS; and again, with the same key, after a
  // lost answer (writes.js). Its answer: {data, replayed}.
  async sendWaiting(i, write) {
    return writeOnce('volume-writes', write, {
      maxS: MAX_WAIT_MS / 1000,
      maxTotalWaitMs: MAX_WAIT_MS,
      onWait: (untilMs, err) => {
        const why = err ? (err.problem && err.problem.title) || err.message : 'a write before it was';
        const detail = `Refused for now (HTTP 429, ${why}), nothing written: sending again at ${formatTime(untilMs)}`;
        const prev = this.results.get(i);
        if (!prev || prev.status !== 'waiting') say(`${this.items[i].name || 'An airspace'} waits: ${detail}`);
        this.setResult(i, { status: 'waiting', detail });
        this.render();
      },
      onLost: () => {
        this.setResult(i, { status: 'sending', detail: 'No answer yet: sending again (it is declared once)' });
        this.render();
      },
    });
  }

  // alternativesList offers the alternatives of item i, each a button that
  // declares it.
  alternativesList(i, alts) {
    const show = (alt) => () => this.showAlternative(alt);
    return el(
      'ul',
      { class: 'alternatives', 'aria-label': 'Conflict-free alternatives' },
      ...alts.map((alt) =>
        el(
          'li',
          {},
          el(
            'button',
            {
              type: 'button',
              class: 'alternative',
              'data-change': alt.change,
              onclick: () => this.declareAlternative(i, alt),
              ...(this.busy ? { disabled: '' } : {}),
              onmouseenter: show(alt),
              onfocus: show(alt),
              onmouseleave: () => this.showAlternative(null),
              onblur: () => this.showAlternative(null),
            },
            `Declare ${alternativeText(alt)}`,
          ),
        ),
      ),
    );
  }

  // setResult records what became of item i; a search asked again before
  // is of what the item was.
  setResult(i, result) {
    this.results.set(i, result);
    this.searches.delete(i);
  }

  // omittedNote says why item i lists no alternatives (why: the service's
  // alternatives_omitted) and offers to search again for input.
  omittedNote(i, why, input, search) {
    const again = el(
      'button',
      { type: 'button', class: 'search-again', onclick: () => this.searchAgain(i, input) },
      search && search.busy ? 'Searching alternatives…' : 'Search alternatives again',
    );
    again.disabled = !input || this.busy || Boolean(search && (search.busy || search.beyond));
    let still = null;
    if (search && search.waitUntilMs) {
      // A countdown: not a live region (the wait was said when it began).
      still = busyNote(`Not searched yet: the party's search budget is still spent (HTTP 429, ${search.refusal})`, search.waitUntilMs, 'p', { class: 'busy search-refused' });
    } else if (search && search.error) {
      still = el('p', { class: 'search-refused', role: 'alert', text: `${search.error.replace(/\.$/, '')}.` });
    }
    return el(
      'div',
      { class: 'alternatives-omitted', 'data-omitted': why },
      el('p', { text: `${omittedText(why)}. A conflict-free variant may well exist.` }),
      still,
      again,
    );
  }

  // searchAgain asks the service for the alternatives of item i's input.
  async searchAgain(i, input) {
    const prev = this.searches.get(i);
    if (!input || (prev && prev.busy)) return;
    const asked = { busy: true };
    this.searches.set(i, asked);
    this.render();
    // The item may be declared, or the file previewed again, meanwhile:
    // then the search is no longer wanted.
    const wanted = () => this.searches.get(i) === asked;
    let search;
    try {
      const res = await askPatiently('alternatives', () => api.alternatives(input), {
        wanted,
        onWait: (untilMs, err) => {
          asked.waitUntilMs = untilMs;
          asked.refusal = err ? (err.problem && err.problem.title) || err.message : 'asked before';
          say(`Alternatives not searched yet: the party's search budget is still spent, ${waitText(untilMs)}`);
          this.render();
        },
      });
      search = { alternatives: (res && res.alternatives) || [] };
    } catch (err) {
      if (err.noLongerWanted) return;
      // 422 beyond-budget: the search costs more than the budget ever
      // holds; asking again never helps, so the button is disabled.
      const beyond = err.status === 422 && Boolean(err.problem && /\/beyond-budget$/.test(err.problem.type || ''));
      let error = err.message;
      if (beyond) {
        error = `Not searched: this search costs more than the party's search budget ever holds (HTTP 422, ${(err.problem && err.problem.title) || err.message}); asking again will not help: make the volume's footprint, band or window smaller, or ask the operator to raise the budget`;
      }
      search = { error, beyond };
    }
    if (wanted()) this.searches.set(i, search);
    this.render();
  }

  // showAlternative draws alt on the map and moves the time slider into
  // its window (null: back to the preview alone).
  showAlternative(alt) {
    this.map.setAlternative(alt);
    if (alt && this.showTime) this.showTime(Date.parse(alt.start));
  }

  // declareAlternative declares alt in place of item i.
  async declareAlternative(i, alt) {
    if (this.busy) return;
    this.busy = true;
    this.render();
    const input = { ...alt };
    delete input.change;
    delete input.climb_m;
    delete input.shift_s;
    try {
      const res = await this.sendWaiting(i, (key) => api.createVolume(input, key));
      this.setResult(i, declaredResult(res, alternativeText(alt)));
      this.onDeclared();
    } catch (err) {
      this.setResult(i, refusedResult(err, input));
    }
    this.busy = false;
    this.map.setAlternative(null);
    this.render();
    say(`${this.items[i].name || 'The airspace'}: ${this.results.get(i).status}`);
  }

  close() {
    this.file = null;
    this.items = [];
    this.results.clear();
    this.map.setPreview([]);
    this.map.setAlternative(null);
    $('import-panel').hidden = true;
  }
}

// declaredResult is what a volume declared with the answer {data: v,
// replayed} became; what: the alternative declared, if one was. An answer
// replayed (the first send had arrived, its answer lost) is a success.
function declaredResult({ data: v, replayed }, what) {
  let detail = `${v.id} (${v.state})${what ? `, ${what}` : ''}${replayed ? ', declared once: the first send had arrived' : ''}`;
  if (v.conflicts && v.conflicts.length) detail += `, accepted though it conflicts with ${v.conflicts.map((c) => `${c.party} ${c.id}`).join(', ')}`;
  return { status: 'declared', detail, omitted: v.alternatives_omitted || '' };
}

// refusedResult is what a write of input refused with err became.
function refusedResult(err, input) {
  const conflict = err.status === 409;
  const p = (conflict && err.problem) || {};
  return { status: conflict ? 'conflicting' : 'refused', detail: err.message, alternatives: p.alternatives || [], omitted: p.alternatives_omitted || '', input };
}

// omittedText says why the service omitted alternatives.
export function omittedText(why) {
  return why === 'budget'
    ? "Alternatives not searched: this party's budget of alternatives searches was spent"
    : `Alternatives not searched (${why})`;
}

const meters = (x) => `${Math.round(x).toLocaleString('en-US')} m`;

// alternativeText says what an alternative is and how far it moves.
export function alternativeText(alt) {
  const band = `${meters(alt.alt_lower_m)}–${meters(alt.alt_upper_m)}`;
  const climb = `${alt.climb_m > 0 ? 'up' : 'down'} ${meters(Math.abs(alt.climb_m))}`;
  const window = `${formatTime(Date.parse(alt.start))} to ${formatTime(Date.parse(alt.end))}`;
  const shift = `${formatDuration(Math.abs(alt.shift_s))} ${alt.shift_s > 0 ? 'later' : 'earlier'}`;
  switch (alt.change) {
    case 'altitude':
      return `${band} (${climb}), same window`;
    case 'time':
      return `${window} (${shift}), same band`;
    default:
      return `${band}, ${window} (${climb}, ${shift})`;
  }
}
