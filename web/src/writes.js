// Writes that must happen once: a hotline message, a volume, an answer to a
// proposal of the rules. Each action of the operator (a click on Send,
// Declare, Accept, ...) gets a fresh Idempotency-Key (docs/WIRE.md
// "Idempotent retries"), and every send of that action carries the same
// key: the sends after a refusal for now (429, busy.js), after an answer
// lost on the way (the connection dropped, a 502/503/504 of a proxy or
// 503 outcome-unknown) and while the first is still served (409
// idempotency-in-progress). The service does a write once per key and
// answers a send again with the answer it kept (Idempotent-Replayed:
// true), which is this action's answer: a success.
//
// An action whose answer stayed lost after the sends again keeps its key
// (ActionKeys): the same action taken again (the same form sent again
// unchanged) is sent with it, so that the operator's own retry cannot
// write it twice either; any other action gets a new key.
//
// The page's buttons of a write are disabled while it is in flight, so
// that a double click is one action (hotline.js, rules.js, importer.js).

import { askPatiently, sleepMs } from './busy.js';

// LOST_ANSWER_SENDS_AGAIN is how many times a write whose answer was lost
// is sent again (with its key), LOST_ANSWER_WAIT_MS apart, then more each
// time; IN_PROGRESS_SENDS_AGAIN how many times one answered that the
// first send is still served.
export const LOST_ANSWER_SENDS_AGAIN = 3;
export const LOST_ANSWER_WAIT_MS = 1000;
export const IN_PROGRESS_SENDS_AGAIN = 10;

const problemType = (err) => (err && err.problem && err.problem.type) || '';

// answerLost tells whether err leaves the outcome of a write unknown: no
// answer, a gateway's failure to get one, or the service's own
// outcome-unknown. A write sent again after it with its key is done once.
export function answerLost(err) {
  if (!err) return false;
  if (err.answerLost) return true;
  if (err.status === 502 || err.status === 504) return true;
  return err.status === 503 && (!err.problem || /\/outcome-unknown$/.test(problemType(err)) || !err.problem.type);
}

function inProgress(err) {
  return Boolean(err) && err.status === 409 && /\/idempotency-in-progress$/.test(problemType(err));
}

function keysExhausted(err) {
  return Boolean(err) && err.status === 429 && /\/idempotency-keys-exhausted$/.test(problemType(err));
}

// newKey is a fresh Idempotency-Key.
export function newKey() {
  return crypto.randomUUID();
}

// writeOnce sends one action's write: write(key) sends it with the
// Idempotency-Key key and answers {data, replayed}. It waits out refusals
// for now as askPatiently does (kind, onWait, maxS, maxTotalWaitMs), and
// sends again with the same key after a lost answer or while the first
// send is served; onLost(attempt) says so. When the party's kept keys are
// exhausted (429 idempotency-keys-exhausted) it sends without a key, as
// the Go client does, and then never again after a lost answer (it could
// write twice). Its answer: {data, replayed, key}; it throws the last
// error, with answerLost(err) true when the outcome is unknown.
export async function writeOnce(kind, write, { key = newKey(), onLost = () => {}, ...patience } = {}) {
  let useKey = key;
  let lost = 0;
  let busy = 0;
  const send = async () => {
    for (;;) {
      try {
        return await write(useKey);
      } catch (err) {
        if (keysExhausted(err) && useKey) {
          useKey = '';
          continue;
        }
        if (answerLost(err) && useKey && lost < LOST_ANSWER_SENDS_AGAIN) {
          lost++;
          onLost(lost);
          await sleepMs(LOST_ANSWER_WAIT_MS * lost);
          continue;
        }
        if (inProgress(err) && useKey && busy < IN_PROGRESS_SENDS_AGAIN) {
          busy++;
          await sleepMs(LOST_ANSWER_WAIT_MS);
          continue;
        }
        throw err;
      }
    }
  };
  const res = await askPatiently(kind, send, patience);
  return { ...res, key: useKey };
}

// ActionKeys keeps the key of each action whose outcome stayed unknown,
// by what the action is (a fingerprint: the form's contents), so that
// taking the same action again reuses it.
export class ActionKeys {
  constructor() {
    this.unknown = new Map(); // fingerprint -> key
  }

  // keyFor is the key to send the action fingerprint with.
  keyFor(fingerprint) {
    return this.unknown.get(fingerprint) || newKey();
  }

  // settled records how the action fingerprint sent with key ended: its
  // key is kept only while its outcome is unknown (err a lost answer).
  settled(fingerprint, key, err = null) {
    if (err && answerLost(err) && key) this.unknown.set(fingerprint, key);
    else this.unknown.delete(fingerprint);
  }
}
