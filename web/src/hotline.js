// The hotline panel: threads named for people and ordered with what needs
// action first (threads.js), done ones collapsed; the messages of the
// selected thread with who has acknowledged them and the time left to each
// deadline; acknowledging, and writing a message. A write refused for now
// (429: nothing was written) is sent again after its Retry-After, the panel
// saying so, for at most HOTLINE_MAX_WAIT_MS (busy.js). A message is sent
// once however often it is sent again (writes.js: one Idempotency-Key per
// Send, its button disabled while it is in flight); an acknowledgment,
// which changes nothing when sent again, needs no key, and its button too
// is disabled while it is in flight.

import { api } from './api.js';
import { $, el, bdi, reconcile, setText } from './dom.js';
import { level } from './palette.js';
import { formatClock } from './geo.js';
import { threadKey, threadName, threadStatus, orderThreads, itemText, excerpt } from './threads.js';
import { runningDeadline, deadlineAttrs, renderDeadline } from './deadline.js';
import { askPatiently, busyNote, waitText } from './busy.js';
import { writeOnce, ActionKeys, answerLost } from './writes.js';
import { say } from './live.js';

const MAX_THREADS = 100;

// MAX_THREAD_MESSAGES bounds the messages of the thread shown: those that
// wait for an acknowledgment are always shown, then the newest of the
// others up to this many. A thread another party floods with thousands of
// messages must not freeze the page, nor push what waits out of sight.
const MAX_THREAD_MESSAGES = 200;

// shownMessages is what of msgs (oldest first) the thread shows, in
// order, and how many earlier ones it leaves out.
export function shownMessages(msgs, max = MAX_THREAD_MESSAGES) {
  if (msgs.length <= max) return { shown: msgs, left: 0 };
  const keep = new Set(msgs.filter((m) => m.state !== 'acknowledged'));
  for (let i = msgs.length - 1; i >= 0 && keep.size < max; i--) keep.add(msgs[i]);
  const shown = msgs.filter((m) => keep.has(m));
  return { shown, left: msgs.length - shown.length };
}

// HOTLINE_MAX_WAIT_MS bounds the waits of one write refused for now: past
// it the panel says it was not sent, and the operator decides.
const HOTLINE_MAX_WAIT_MS = 2 * 60 * 1000;

// showWait shows that a hotline write of what waits until untilMs (the
// countdown out of any live region) and says once that it does.
function showWait(what, untilMs) {
  const text = `${what} busy: nothing sent yet`;
  $('compose-note').replaceChildren(busyNote(text, untilMs));
  say(`${text}, ${waitText(untilMs)}`);
}

// sendPatiently sends an acknowledgment, waiting out refusals for now and
// saying so as what.
function sendPatiently(what, send) {
  return askPatiently('hotline-writes', send, {
    maxTotalWaitMs: HOTLINE_MAX_WAIT_MS,
    onWait: (untilMs) => showWait(what, untilMs),
  });
}

export class HotlinePanel {
  // state is the ConsoleState, styles the PartyStyles, and refresh redraws
  // every panel after a change made here.
  constructor({ state, styles, refresh }) {
    this.state = state;
    this.styles = styles;
    this.refresh = refresh;
    this.sending = false; // a message is in flight
    this.keys = new ActionKeys(); // the keys of messages whose answer was lost
  }

  // newsOf is what to say of hotline item m, which was prev before (null:
  // new), for the party logged in: a new item from another party, an
  // escalation, another party's acknowledgment; '' when nothing matters.
  newsOf(prev, m) {
    const me = this.state.me && this.state.me.party;
    const what = `${m.kind} from ${m.from}`;
    if (!prev) {
      if (m.from === me) return '';
      return `New hotline ${what}${this.state.mustAck(m) ? ', to acknowledge' : ''}: ${excerpt(itemText(m) || m.text, 120)}`;
    }
    const news = [];
    if ((m.state === 'escalated' && prev.state !== 'escalated') || (m.escalations || 0) > (prev.escalations || 0)) {
      news.push(`Escalated${m.escalations > 1 ? ` ${m.escalations} times` : ''}: ${what}`);
    }
    for (const k of m.acks || []) {
      if (k.party !== me && !(prev.acks || []).some((p) => p.party === k.party)) news.push(`${k.party} acknowledged the ${what}`);
    }
    if (m.settled && !prev.settled) news.push(`Settled: ${what}`);
    return news.join('. ');
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
    const { shown: msgs, left } = shownMessages(current ? current.msgs : []);
    const more = left ? `${left.toLocaleString('en-US')} earlier acknowledged messages not shown.` : '';
    if ($('messages-more').textContent !== more) $('messages-more').textContent = more;
    // The name holds other parties' strings: isolated after "Thread: ".
    const titleSig = current ? `Thread: ${current.name}` : 'No thread selected';
    if ($('thread-title').dataset.sig !== titleSig) {
      $('thread-title').dataset.sig = titleSig;
      $('thread-title').replaceChildren(...(current ? ['Thread: ', bdi(current.name)] : ['No thread selected']));
    }
    // Replying in the thread picked, named for people; its key stays in
    // the form, out of sight. Otherwise the form starts a thread.
    const replying = state.threadChosen && current;
    if (replying && $('compose-thread').value !== current.key) $('compose-thread').value = current.key;
    $('compose-thread-row').hidden = Boolean(replying);
    $('compose-new-thread').hidden = !replying;
    const context = replying ? `Replying in “${current.name}”` : 'Starting a new thread: name it below.';
    if ($('compose-context').dataset.sig !== context) {
      $('compose-context').dataset.sig = context;
      $('compose-context').replaceChildren(...(replying ? ['Replying in “', bdi(current.name), '”'] : [context]));
    }
    const messageSig = (m) => JSON.stringify([m.state, m.escalations, m.text, m.to, m.acks, m.settled, mustAck(m), state.acking.has(m.id)]);
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
            bdi(p),
            `: ${ack ? `acknowledged ${formatClock(Date.parse(ack.time))}` : settled ? 'did not answer; settled' : late ? 'not acknowledged, escalated' : 'waiting'}`,
            ...(ack && ack.reply ? [' — “', bdi(ack.reply), '”'] : []),
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
          : el(
              'button',
              { type: 'button', class: 'ack', 'data-message-id': m.id, 'aria-label': `Acknowledge message from ${m.from}`, onclick: () => this.acknowledge(m.id), ...(state.acking.has(m.id) ? { disabled: '' } : {}) },
              state.acking.has(m.id) ? 'Acknowledging…' : 'Acknowledge',
            );
      return el(
        'li',
        { class: `message state-${m.state}`, 'data-message-id': m.id },
        el(
          'p',
          { class: 'msg-head' },
          el('strong', { class: 'msg-from', colour: m.from === 'deconflict' ? '' : this.styles.colour(m.from) }, bdi(m.from)),
          ' → ',
          ...(m.to || []).flatMap((p, i) => (i ? [', ', bdi(p)] : [bdi(p)])),
          ' · ',
          bdi(m.kind),
          ` · ${formatClock(Date.parse(m.created))}`,
          m.state === 'escalated' ? el('span', { class: 'escalated-flag', text: 'ESCALATED' }) : null,
        ),
        // Its own paragraph, its direction its own (dir=auto isolates it).
        el('p', { class: 'msg-text', dir: 'auto', text: itemText(m) || m.text || '' }),
        itemText(m) ? el('details', { class: 'msg-record' }, el('summary', { text: 'As recorded' }), el('p', { dir: 'auto', text: m.text || '' })) : null,
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

  // acknowledge sends the acknowledgment of item id, once at a time: its
  // buttons (here and in the alerts) are disabled while it is in flight.
  async acknowledge(id) {
    const state = this.state;
    if (state.acking.has(id)) return;
    state.acking.add(id);
    this.refresh();
    try {
      const m = await sendPatiently('Acknowledgment', () => api.ack(id));
      if (m && m.id !== undefined) state.putMessage(m);
      // The busy note of this write, not another's.
      if ($('compose-note').querySelector('[data-retry-at]')) $('compose-note').textContent = '';
      say('Acknowledged');
    } catch (err) {
      setText($('compose-error'), `Acknowledge failed: ${err.message}`);
    } finally {
      state.acking.delete(id);
      this.refresh();
    }
  }

  // compose sends the message of the form, once: the Send button is
  // disabled while it is in flight (a double click sends it once), and
  // every send of it carries the same Idempotency-Key (writes.js), the
  // form sent again unchanged after a lost answer too.
  async compose(e) {
    e.preventDefault();
    if (this.sending) return;
    const f = e.target;
    const to = f.to.value.split(',').map((s) => s.trim()).filter(Boolean);
    let thread = f.thread.value.trim();
    // A party starts threads in its own space, <party>/<name>: the
    // service refuses a name elsewhere that the party is not on, so that
    // nobody learns from a refusal which threads the others have begun.
    const me = this.state.me && this.state.me.party;
    if (!$('compose-thread-row').hidden && thread && me && !thread.startsWith(`${me}/`)) thread = `${me}/${thread}`;
    const msg = { to, kind: f.kind.value, thread, text: f.text.value };
    const fingerprint = JSON.stringify(msg);
    const key = this.keys.keyFor(fingerprint);
    this.sending = true;
    $('compose-send').disabled = true;
    $('compose-error').textContent = '';
    $('compose-note').textContent = 'Sending…';
    try {
      const res = await writeOnce('hotline-writes', (k) => api.send(msg, k), {
        key,
        maxTotalWaitMs: HOTLINE_MAX_WAIT_MS,
        onWait: (untilMs) => showWait('Message', untilMs),
        onLost: () => {
          $('compose-note').textContent = 'No answer yet: sending again (it is written once)…';
        },
      });
      this.keys.settled(fingerprint, key);
      const m = res.data;
      if (m && m.id !== undefined) this.state.putMessage(m);
      this.state.selectedThread = m && m.id !== undefined ? threadKey(m) : msg.thread;
      this.state.threadChosen = true;
      f.text.value = '';
      // Answered from the first send's kept answer: it had arrived, and
      // is not written twice. That is a success.
      const done = res.replayed ? 'Sent: the first send had arrived; it was not sent twice.' : 'Sent.';
      $('compose-note').textContent = done;
      say(done);
      this.refresh();
    } catch (err) {
      this.keys.settled(fingerprint, key, err);
      $('compose-note').textContent = '';
      setText(
        $('compose-error'),
        answerLost(err) ? `Not known whether it was sent: ${err.message}. Sending it again unchanged cannot send it twice.` : `Not sent: ${err.message}`,
      );
    } finally {
      this.sending = false;
      $('compose-send').disabled = false;
    }
  }
}
