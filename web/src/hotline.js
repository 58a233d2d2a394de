// The hotline panel: threads, newest first, the messages of the selected
// one with who has acknowledged them, acknowledging, and writing a message.

import { api } from './api.js';
import { $, el, reconcile } from './dom.js';
import { level } from './palette.js';
import { formatTime } from './geo.js';

const MAX_THREADS = 100;

export class HotlinePanel {
  // state is the ConsoleState, styles the PartyStyles, and refresh redraws
  // every panel after a change made here.
  constructor({ state, styles, refresh }) {
    this.state = state;
    this.styles = styles;
    this.refresh = refresh;
  }

  // threads groups the messages by thread, each in order of creation, the
  // threads with the newest message first.
  threads() {
    const by = new Map();
    for (const m of this.state.messages.values()) {
      const t = m.thread || (m.ref && m.ref.alert_id !== undefined ? `alert ${m.ref.alert_id}` : m.id);
      if (!by.has(t)) by.set(t, []);
      by.get(t).push(m);
    }
    for (const list of by.values()) list.sort((a, b) => Date.parse(a.created) - Date.parse(b.created));
    return [...by.entries()].sort((a, b) => Date.parse(b[1][b[1].length - 1].created) - Date.parse(a[1][a[1].length - 1].created));
  }

  threadLabel(name, msgs) {
    const ref = msgs[0] && msgs[0].ref && msgs[0].ref.alert_id;
    const a = ref !== undefined && ref !== null ? this.state.alerts.get(String(ref)) : null;
    if (!a) return name;
    const who = (a.aircraft || []).map((x) => x.callsign || x.aircraft).join(' ↔ ') || (a.volumes || []).map((v) => v.id).join(' ↔ ');
    return `${level(a.level).label.toLowerCase()} ${a.kind.replace('_', ' ')}: ${who}`;
  }

  render() {
    const state = this.state;
    const mustAck = (m) => state.mustAck(m);
    const all = this.threads();
    if (!state.selectedThread && all.length) state.selectedThread = all[0][0];
    reconcile(
      $('threads'),
      all.slice(0, MAX_THREADS),
      ([name]) => name,
      ([name, msgs]) => JSON.stringify([this.threadLabel(name, msgs), name === state.selectedThread, msgs.length, msgs.filter(mustAck).length, msgs.some((m) => m.state === 'escalated')]),
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
                this.render();
              },
            },
            el('span', { class: 'thread-name', text: this.threadLabel(name, msgs) }),
            el('span', { class: 'thread-meta', text: `${msgs.length} msg${open ? ` · ${open} to acknowledge` : ''}${escalated ? ' · ESCALATED' : ''}` }),
          ),
        );
      },
    );

    const msgs = (all.find(([n]) => n === state.selectedThread) || [null, []])[1];
    const title = state.selectedThread ? `Thread: ${this.threadLabel(state.selectedThread, msgs)}` : 'No thread selected';
    if ($('thread-title').textContent !== title) $('thread-title').textContent = title;
    const messageSig = (m) => JSON.stringify([m.state, m.text, m.to, m.acks, mustAck(m)]);
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
        ? el('button', { type: 'button', class: 'ack', 'data-message-id': m.id, 'aria-label': `Acknowledge message from ${m.from}`, onclick: () => this.acknowledge(m.id) }, 'Acknowledge')
        : null;
      return el(
        'li',
        { class: `message state-${m.state}`, 'data-message-id': m.id },
        el(
          'p',
          { class: 'msg-head' },
          el('strong', { text: m.from, colour: m.from === 'deconflict' ? '' : this.styles.colour(m.from) }),
          ` → ${(m.to || []).join(', ')} · ${m.kind} · ${formatTime(Date.parse(m.created)).slice(11)}`,
          m.state === 'escalated' ? el('span', { class: 'escalated-flag', text: 'ESCALATED' }) : null,
        ),
        el('p', { class: 'msg-text', text: m.text || '' }),
        acks,
        ackBtn,
      );
    });
  }

  // renderKnownParties offers the parties seen so far as recipients.
  renderKnownParties() {
    const dl = $('known-parties');
    const me = this.state.me;
    dl.replaceChildren(...this.styles.order.filter((p) => me && p !== me.party).map((p) => el('option', { value: p })));
  }

  async acknowledge(id) {
    try {
      const m = await api.ack(id);
      if (m && m.id !== undefined) this.state.putMessage(m);
      this.refresh();
    } catch (err) {
      $('compose-error').textContent = `Acknowledge failed: ${err.message}`;
    }
  }

  async compose(e) {
    e.preventDefault();
    const f = e.target;
    const to = f.to.value.split(',').map((s) => s.trim()).filter(Boolean);
    const msg = { to, kind: f.kind.value, thread: f.thread.value.trim(), text: f.text.value };
    try {
      const m = await api.send(msg);
      if (m && m.id !== undefined) this.state.putMessage(m);
      this.state.selectedThread = msg.thread;
      f.text.value = '';
      $('compose-error').textContent = '';
      this.refresh();
    } catch (err) {
      $('compose-error').textContent = `Not sent: ${err.message}`;
    }
  }
}
