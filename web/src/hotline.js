// The hotline panel: threads named for people and ordered with what needs
// action first (threads.js), done ones collapsed; the messages of the
// selected thread with who has acknowledged them and the time left to each
// deadline; acknowledging, and writing a message. A write refused for now
// (429: nothing was written) is sent again after its Retry-After, the panel
// saying so, for at most HOTLINE_MAX_WAIT_MS (busy.js).

import { api } from './api.js';
import { $, el, reconcile } from './dom.js';
import { level } from './palette.js';
import { formatClock } from './geo.js';
import { threadKey, threadName, threadStatus, orderThreads, itemText } from './threads.js';
import { runningDeadline, deadlineAttrs, renderDeadline } from './deadline.js';
import { askPatiently, busyAttrs } from './busy.js';

const MAX_THREADS = 100;

// HOTLINE_MAX_WAIT_MS bounds the waits of one write refused for now: past
// it the panel says it was not sent, and the operator decides.
const HOTLINE_MAX_WAIT_MS = 2 * 60 * 1000;

// sendPatiently sends a hotline write, waiting out refusals for now and
// saying so as what.
function sendPatiently(what, send) {
  return askPatiently('hotline-writes', send, {
    maxTotalWaitMs: HOTLINE_MAX_WAIT_MS,
    onWait: (untilMs) => $('compose-error').replaceChildren(el('span', busyAttrs(`${what} busy: nothing sent yet`, untilMs))),
  });
}

export class HotlinePanel {
  // state is the ConsoleState, styles the PartyStyles, and refresh redraws
  // every panel after a change made here.
  constructor({ state, styles, refresh }) {
    this.state = state;
    this.styles = styles;
    this.refresh = refresh;
  }

  // threads lists the threads ({key, name, msgs, status}), messages in
  // order of creation, the threads in the order of orderThreads.
  threads(now = Date.now()) {
    const state = this.state;
    const by = new Map();
    for (const m of state.messages.values()) {
      const k = threadKey(m);
      if (!by.has(k)) by.set(k, []);
      by.get(k).push(m);
    }
    const me = state.me && state.me.party;
    const known = { alerts: state.alerts, volumes: state.volumes };
    const out = [];
    for (const [key, msgs] of by) {
      msgs.sort((a, b) => Date.parse(a.created) - Date.parse(b.created));
      out.push({ key, msgs, name: threadName(key, msgs, known, now), status: threadStatus(msgs, me, (m) => state.mustAck(m)) });
    }
    return orderThreads(out);
  }

  threadButton(t) {
    const state = this.state;
    const selected = t.key === state.selectedThread;
    const lvl = [...t.msgs].reverse().find((m) => m.level)?.level;
    const d = t.status.next ? runningDeadline(t.status.next, state.rules) : null;
    const deadline = d ? el('span', deadlineAttrs(d)) : null;
    if (deadline) renderDeadline(deadline, Date.now());
    return el(
      'li',
      {},
      el(
        'button',
        {
          type: 'button',
          class: `thread state-${t.status.key}${selected ? ' selected' : ''}${t.status.escalated ? ' escalated' : ''}`,
          'aria-pressed': String(selected),
          'data-thread': t.key,
          onclick: () => this.select(t),
        },
        el('span', { class: 'thread-name', text: t.name }),
        el('span', { class: 'thread-state', text: t.status.label }),
        el('span', { class: 'thread-meta' }, `${t.msgs.length} msg${t.msgs.length > 1 ? 's' : ''}${lvl ? ` · ${level(lvl).label.toLowerCase()}` : ''}`, deadline ? ' · ' : null, deadline),
      ),
    );
  }

  select(t) {
    const state = this.state;
    state.selectedThread = t.key;
    state.threadChosen = true;
    $('compose-thread').value = t.key;
    const me = state.me && state.me.party;
    const others = new Set();
    for (const m of t.msgs) for (const p of [m.from, ...(m.to || [])]) if (p !== me && p !== 'deconflict') others.add(p);
    if (others.size && !$('compose-to').value.trim()) $('compose-to').value = [...others].join(', ');
    this.render();
  }

  render() {
    const state = this.state;
    const mustAck = (m) => state.mustAck(m);
    const all = this.threads();
    // Until the operator picks a thread, the most urgent one is open.
    if (!state.threadChosen || !all.some((t) => t.key === state.selectedThread)) state.selectedThread = all.length ? all[0].key : '';
    const active = all.filter((t) => t.status.key !== 'done');
    const done = all.filter((t) => t.status.key === 'done');
    // The signature leaves the countdown out: it ticks in place.
    const sig = (t) => JSON.stringify([t.name, t.key === state.selectedThread, t.msgs.length, t.status.label, t.status.next && t.status.next.id, t.status.next && t.status.next.state]);
    reconcile($('threads'), active.slice(0, MAX_THREADS), (t) => t.key, sig, (t) => this.threadButton(t));
    reconcile($('threads-done-list'), done.slice(0, MAX_THREADS), (t) => t.key, sig, (t) => this.threadButton(t));
    const summary = `Done (${done.length})`;
    if ($('threads-done-summary').textContent !== summary) $('threads-done-summary').textContent = summary;
    $('threads-done').hidden = done.length === 0;
    $('threads-empty').hidden = active.length > 0;

    const current = all.find((t) => t.key === state.selectedThread);
    const msgs = current ? current.msgs : [];
    const title = current ? `Thread: ${current.name}` : 'No thread selected';
    if ($('thread-title').textContent !== title) $('thread-title').textContent = title;
    // Replying in the thread picked, named for people; its key stays in
    // the form, out of sight. Otherwise the form starts a thread.
    const replying = state.threadChosen && current;
    if (replying && $('compose-thread').value !== current.key) $('compose-thread').value = current.key;
    $('compose-thread-row').hidden = Boolean(replying);
    $('compose-new-thread').hidden = !replying;
    const context = replying ? `Replying in “${current.name}”` : 'Starting a new thread: name it below.';
    if ($('compose-context').textContent !== context) $('compose-context').textContent = context;
    const messageSig = (m) => JSON.stringify([m.state, m.escalations, m.text, m.to, m.acks, m.settled, mustAck(m)]);
    reconcile($('messages'), msgs, (m) => m.id, messageSig, (m) => {
      const acks = el(
        'ul',
        { class: 'acks', 'aria-label': 'Acknowledgments' },
        ...(m.to || []).map((p) => {
          const ack = (m.acks || []).find((k) => k.party === p);
          // Settled without this recipient: nothing is left to answer.
          const settled = !ack && m.state === 'acknowledged';
          const late = !ack && m.state === 'escalated';
          const d = ack ? null : runningDeadline(m, state.rules);
          const deadline = d ? el('span', deadlineAttrs(d)) : null;
          if (deadline) renderDeadline(deadline, Date.now());
          return el(
            'li',
            { class: ack ? 'acked' : settled ? 'settled' : late ? 'late' : 'waiting' },
            el('span', { class: 'ack-mark', 'aria-hidden': 'true', text: ack ? '✓' : settled ? '–' : late ? '!' : '…' }),
            `${p}: ${ack ? `acknowledged ${formatClock(Date.parse(ack.time))}${ack.reply ? ` — “${ack.reply}”` : ''}` : settled ? 'did not answer; settled' : late ? 'not acknowledged, escalated' : 'waiting'}`,
            deadline ? ' · ' : null,
            deadline,
          );
        }),
      );
      // A proposal of the rules is acknowledged by the answer (Rules
      // proposals panel): the service refuses a plain acknowledgment
      // while the proposal waits for it (409 answer-required).
      const ackBtn = !mustAck(m)
        ? null
        : m.kind === 'rules_proposal'
          ? el('p', { class: 'msg-answer', text: 'Answer it under Rules proposals (accept or reject): the answer acknowledges it.' })
          : el('button', { type: 'button', class: 'ack', 'data-message-id': m.id, 'aria-label': `Acknowledge message from ${m.from}`, onclick: () => this.acknowledge(m.id) }, 'Acknowledge');
      return el(
        'li',
        { class: `message state-${m.state}`, 'data-message-id': m.id },
        el(
          'p',
          { class: 'msg-head' },
          el('strong', { text: m.from, colour: m.from === 'deconflict' ? '' : this.styles.colour(m.from) }),
          ` → ${(m.to || []).join(', ')} · ${m.kind} · ${formatClock(Date.parse(m.created))}`,
          m.state === 'escalated' ? el('span', { class: 'escalated-flag', text: 'ESCALATED' }) : null,
        ),
        el('p', { class: 'msg-text', text: itemText(m) || m.text || '' }),
        itemText(m) ? el('details', { class: 'msg-record' }, el('summary', { text: 'As recorded' }), el('p', { text: m.text || '' })) : null,
        acks,
        // Why it is acknowledged without some recipients: the proposal
        // it asked them to answer closed.
        m.settled ? el('p', { class: 'msg-settled', text: `Settled ${formatClock(Date.parse(m.settled.time))}: ${m.settled.reason}` }) : null,
        ackBtn,
      );
    });
  }

  // newThread leaves the thread picked, so that the form starts one.
  newThread() {
    this.state.threadChosen = false;
    $('compose-thread').value = '';
    this.render();
    $('compose-thread').focus();
  }

  // renderKnownParties offers the parties seen so far as recipients.
  renderKnownParties() {
    const dl = $('known-parties');
    const me = this.state.me;
    dl.replaceChildren(...this.styles.order.filter((p) => me && p !== me.party).map((p) => el('option', { value: p })));
  }

  async acknowledge(id) {
    try {
      const m = await sendPatiently('Acknowledgment', () => api.ack(id));
      if (m && m.id !== undefined) this.state.putMessage(m);
      // The busy note of this write, not an error of another one.
      if ($('compose-error').querySelector('[data-retry-at]')) $('compose-error').textContent = '';
      this.refresh();
    } catch (err) {
      $('compose-error').textContent = `Acknowledge failed: ${err.message}`;
    }
  }

  async compose(e) {
    e.preventDefault();
    const f = e.target;
    const to = f.to.value.split(',').map((s) => s.trim()).filter(Boolean);
    let thread = f.thread.value.trim();
    // A party starts threads in its own space, <party>/<name>: the
    // service refuses a name elsewhere that the party is not on, so that
    // nobody learns from a refusal which threads the others have begun.
    const me = this.state.me && this.state.me.party;
    if (!$('compose-thread-row').hidden && thread && me && !thread.startsWith(`${me}/`)) thread = `${me}/${thread}`;
    const msg = { to, kind: f.kind.value, thread, text: f.text.value };
    try {
      const m = await sendPatiently('Message', () => api.send(msg));
      if (m && m.id !== undefined) this.state.putMessage(m);
      this.state.selectedThread = m && m.id !== undefined ? threadKey(m) : msg.thread;
      this.state.threadChosen = true;
      f.text.value = '';
      $('compose-error').textContent = '';
      this.refresh();
    } catch (err) {
      $('compose-error').textContent = `Not sent: ${err.message}`;
    }
  }
}
