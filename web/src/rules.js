// The rules panel: the open proposals of a change of the agreed rules, what
// each changes field by field (old -> new), who has answered, who is
// awaited, and, for a party that is awaited, Accept and Reject. A proposal
// comes into force only when every party has accepted it (docs/WIRE.md).
// An answer is sent once: its buttons are disabled while it is in flight,
// and every send of it carries the same Idempotency-Key (writes.js).

import { api } from './api.js';
import { askPatiently, delayed, failed } from './busy.js';
import { writeOnce, ActionKeys } from './writes.js';
import { say } from './live.js';
import { $, el, bdi, reconcile } from './dom.js';
import { formatClock } from './geo.js';

// show renders a field's JSON value compactly.
function show(v) {
  const s = JSON.stringify(v);
  return s === undefined ? '—' : s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

export class RulesPanel {
  // state is the ConsoleState; onChange runs after an answer was sent.
  constructor({ state }) {
    this.state = state;
    this.proposals = new Map(); // version -> open proposal
    this.errors = new Map(); // version -> the last refusal of an answer
    this.answering = new Set(); // versions whose answer is in flight
    this.keys = new ActionKeys(); // the keys of answers whose outcome is unknown
  }

  async load() {
    try {
      const res = await askPatiently('proposals', () => api.proposals(), { onWait: (untilMs) => delayed('proposals', 'Proposals of rules', untilMs) });
      delayed('proposals', '');
      this.proposals.clear();
      for (const p of (res && res.proposals) || []) this.proposals.set(p.version, p);
    } catch (err) {
      // Kept as it was, and said; the next event or login loads again.
      failed('proposals', 'Proposals of rules', err);
    }
    this.render();
  }

  // put takes a proposal from an event or an answer: open ones are listed,
  // closed ones leave the list.
  put(p) {
    if (!p || p.version === undefined) return;
    if (p.state === 'proposed') this.proposals.set(p.version, p);
    else this.proposals.delete(p.version);
  }

  awaited(p) {
    const me = this.state.me;
    return me && !me.operator && (p.waiting_for || []).includes(me.party);
  }

  // answer accepts or rejects the proposal p as shown. An acceptance names
  // the content it accepts: the rules_sha256 of the proposal shown, which
  // the server checks against the rules it holds under that version (409
  // rules-content-differs when they changed since), so that the signed
  // acceptance binds what the party saw, not only the version number.
  async answer(p, accept) {
    const version = p.version;
    if (this.answering.has(version)) return;
    const reasonInput = document.getElementById(`rules-reason-${version}`);
    const reason = reasonInput ? reasonInput.value.trim() : '';
    const digest = p.rules_sha256 || '';
    const fingerprint = JSON.stringify([version, accept, accept ? digest : reason]);
    const key = this.keys.keyFor(fingerprint);
    this.answering.add(version);
    this.render();
    try {
      const res = await writeOnce('rules-answers', (k) => (accept ? api.acceptRules(version, digest, k) : api.rejectRules(version, reason, k)), { key, maxTotalWaitMs: 2 * 60 * 1000 });
      this.keys.settled(fingerprint, key);
      this.errors.delete(version);
      this.put(res.data);
      say(`${accept ? 'Accepted' : 'Rejected'} version ${version}${res.replayed ? ' (the first send had arrived; answered once)' : ''}`);
    } catch (err) {
      this.keys.settled(fingerprint, key, err);
      this.errors.set(version, err.message);
    } finally {
      this.answering.delete(version);
    }
    this.render();
  }

  render() {
    const list = [...this.proposals.values()].sort((a, b) => a.version - b.version);
    $('rules-panel').hidden = list.length === 0;
    $('rules-count').textContent = list.length ? String(list.length) : '';
    reconcile(
      $('proposals'),
      list,
      (p) => p.version,
      (p) => JSON.stringify([p.rules_sha256, p.answers, p.waiting_for, this.awaited(p), this.errors.get(p.version) || '', this.answering.has(p.version)]),
      (p) => {
        const changes = el(
          'table',
          { class: 'changes' },
          el('caption', { class: 'visually-hidden', text: `Changes of version ${p.version}` }),
          el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Field' }), el('th', { scope: 'col', text: 'In force' }), el('th', { scope: 'col', text: 'Proposed' }))),
          el(
            'tbody',
            {},
            ...(p.changes || []).map((c) => el('tr', { 'data-field': c.field }, el('th', { scope: 'row' }, bdi(c.field)), el('td', { class: 'old' }, bdi(show(c.old))), el('td', { class: 'new' }, '→ ', bdi(show(c.new))))),
          ),
        );
        const answers = el(
          'ul',
          { class: 'answers', 'aria-label': 'Answers' },
          ...(p.answers || []).map((a) =>
            el(
              'li',
              { class: a.accepted ? 'accepted' : 'rejected' },
              bdi(a.party),
              `: ${a.accepted ? 'accepted' : 'rejected'} ${formatClock(Date.parse(a.time))}`,
              ...(a.reason ? [' — “', bdi(a.reason), '”'] : []),
            ),
          ),
          ...(p.waiting_for || []).map((w) => el('li', { class: 'waiting' }, bdi(w), ': waiting')),
        );
        const inFlight = this.answering.has(p.version) ? { disabled: '' } : {};
        const actions = this.awaited(p)
          ? el(
              'div',
              { class: 'rules-actions' },
              el('button', { type: 'button', class: 'ack', 'data-accept': String(p.version), onclick: () => this.answer(p, true), ...inFlight }, `Accept version ${p.version}`),
              el('label', { for: `rules-reason-${p.version}`, class: 'visually-hidden', text: 'Reason for rejecting' }),
              el('input', { id: `rules-reason-${p.version}`, placeholder: 'reason (optional)' }),
              el('button', { type: 'button', 'data-reject': String(p.version), onclick: () => this.answer(p, false), ...inFlight }, `Reject version ${p.version}`),
            )
          : null;
        const err = this.errors.get(p.version);
        return el(
          'li',
          { class: 'proposal', 'data-version': String(p.version) },
          el('p', { class: 'msg-head' }, el('strong', { text: `Version ${p.version}` }), ' proposed by ', bdi(p.proposed_by), ` against v${p.base_version} · ${formatClock(Date.parse(p.created))}`),
          changes,
          p.rules_sha256 ? el('p', { class: 'rules-digest', title: 'SHA-256 of the canonical JSON of the proposed rules: what an acceptance names' }, 'Content ', el('code', { text: p.rules_sha256 })) : null,
          answers,
          actions,
          err ? el('p', { class: 'error', role: 'alert', text: err }) : null,
        );
      },
    );
  }
}
