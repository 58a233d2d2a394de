// Server-sent events over fetch(). EventSource cannot send an Authorization
// header, and the token must not go in a URL, so the stream is read with a
// ReadableStream and parsed here (the WHATWG event-stream format). After a
// lost connection it reconnects with Last-Event-ID so that the server replays
// everything that was missed (the console asks with ?snapshot=1: without an
// id, or one far behind, the server sends the state as a first 'snapshot'
// event, instead of the history; the snapshot carries an id to resume from
// when one id resumes after it exactly, and none otherwise).

import { savedToken } from './api.js';
import { askPatiently, retryAfterSeconds } from './busy.js';

const SILENCE_MS = 45000;

export class EventStream {
  constructor({ url, onEvent, onState, lastEventId = '' }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.lastEventId = lastEventId;
    this.retryMs = 1000;
    this.stopped = false;
    this.controller = null;
    this.attempt = 0;
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
  }

  // Drops the current connection; the loop reconnects and resumes.
  reconnect() {
    if (this.controller) this.controller.abort();
  }

  async loop() {
    while (!this.stopped) {
      this.onState(this.attempt === 0 ? 'connecting' : 'reconnecting', this.attempt);
      this.controller = new AbortController();
      const signal = this.controller.signal;
      try {
        // Refused for now (429: the party's streams at their cap, or its
        // snapshots over their rate): asked again after Retry-After.
        await askPatiently('events', () => this.connect(signal), {
          wanted: () => !this.stopped && !signal.aborted,
          onWait: (untilMs) => this.onState('reconnecting', this.attempt, untilMs),
        });
      } catch (err) {
        if (err && err.status === 401) {
          this.onState('unauthorized', this.attempt);
          return;
        }
      }
      if (this.stopped) return;
      this.attempt++;
      this.onState('reconnecting', this.attempt);
      const wait = Math.min(this.retryMs * Math.min(this.attempt, 5), 10000);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async connect(signal) {
    const headers = { Authorization: `Bearer ${savedToken()}`, Accept: 'text/event-stream' };
    if (this.lastEventId) headers['Last-Event-ID'] = this.lastEventId;
    const res = await fetch(this.url, { headers, signal, cache: 'no-store', credentials: 'omit' });
    if (res.status === 401) throw Object.assign(new Error('unauthorized'), { status: 401 });
    if (res.status === 429) {
      throw Object.assign(new Error('event stream: HTTP 429'), { status: 429, retryAfterS: retryAfterSeconds(res.headers.get('Retry-After')) });
    }
    if (res.status === 400 && this.lastEventId) {
      // The server has no event of that id: its store is of another
      // history (restored from an older copy). Nothing can be resumed:
      // start afresh, without a cursor (the stream then opens with a
      // snapshot of the picture).
      this.lastEventId = '';
    }
    if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
    this.attempt = 0;
    this.onState('live', 0);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new EventParser((ev) => this.dispatch(ev));
    // The server writes a heartbeat comment every 15 s; a connection that
    // stays silent much longer is dead even if no error reached us.
    let heard = Date.now();
    const watchdog = setInterval(() => {
      if (Date.now() - heard > SILENCE_MS) this.controller.abort();
    }, 5000);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        heard = Date.now();
        parser.push(value);
      }
    } finally {
      clearInterval(watchdog);
    }
  }

  dispatch(ev) {
    if (ev.retry !== undefined) this.retryMs = ev.retry;
    if (ev.id !== undefined) this.lastEventId = ev.id;
    if (ev.data === undefined) return;
    let payload;
    try {
      payload = JSON.parse(ev.data);
    } catch {
      return;
    }
    this.onEvent(ev.event || 'message', payload, ev.id);
  }
}

// EventParser turns chunks of text into events, following the line rules of
// the HTML specification (CR, LF or CRLF line ends; a leading BOM-free stream).
export class EventParser {
  constructor(emit) {
    this.emit = emit;
    this.buf = '';
    this.reset();
  }

  reset() {
    this.data = [];
    this.event = '';
    this.id = undefined;
    this.retry = undefined;
  }

  push(chunk) {
    this.buf += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) return;
      // A lone CR at the end may be the first half of CRLF.
      if (m[0] === '\r' && m.index === this.buf.length - 1) return;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length || this.id !== undefined || this.retry !== undefined) {
        this.emit({
          event: this.event,
          data: this.data.length ? this.data.join('\n') : undefined,
          id: this.id,
          retry: this.retry,
        });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break;
    }
  }
}
