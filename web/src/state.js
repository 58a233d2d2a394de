// What the console knows of the service, shared by the panels: the party
// logged in, the rules, open alerts, hotline messages (with the newest item
// of each alert), volumes, and the state of the connection and the controls.
// Events and snapshots write it; the panels read it when they render.

export class ConsoleState {
  constructor() {
    this.me = null;
    this.rules = null;
    this.alerts = new Map(); // alert id -> alert
    this.messages = new Map(); // message id -> message
    this.messageByAlert = new Map(); // alert id -> its newest hotline item
    this.messagePuts = new Map(); // message id -> how many times it was stored (the tests: once per change)
    this.acking = new Set(); // ids of the messages whose acknowledgment is in flight
    this.volumes = [];
    this.conn = 'offline';
    this.attempt = 0;
    this.trackPollOK = true;
    this.tracksWaitUntilMs = 0; // the tracks are refused for now (429) until then
    this.streamWaitUntilMs = 0; // the event stream is refused for now (429) until then
    this.sliderMin = 0;
    this.selectedThread = '';
    this.threadChosen = false; // the operator picked selectedThread
    this.eventsApplied = 0;
    this.snapshots = 0; // snapshots of the state the event stream opened with
  }

  // putMessage stores a message; an alert can have several hotline items (a
  // new one when its level rises), and the alert row shows the newest.
  putMessage(m) {
    this.messages.set(m.id, m);
    this.messagePuts.set(m.id, (this.messagePuts.get(m.id) || 0) + 1);
    const ref = m.ref && m.ref.alert_id;
    if (ref === undefined || ref === null || ref === '') return;
    const prev = this.messageByAlert.get(String(ref));
    if (!prev || prev.id === m.id || Date.parse(m.created) >= Date.parse(prev.created)) this.messageByAlert.set(String(ref), m);
  }

  clearMessages() {
    this.messages.clear();
    this.messageByAlert.clear();
    this.messagePuts.clear();
  }

  // alertMessage is the newest hotline item of alert a, or null.
  alertMessage(a) {
    return this.messageByAlert.get(String(a.id)) || null;
  }

  // mustAck tells whether the party logged in has yet to acknowledge m:
  // an acknowledged item asks nothing more, even of a recipient whose
  // acknowledgment it lacks (settled: the proposal it asked about closed).
  mustAck(m) {
    return m && this.me && m.state !== 'acknowledged' && (m.to || []).includes(this.me.party) && !(m.acks || []).some((k) => k.party === this.me.party);
  }
}
