// Talks to the deconflict HTTP API (docs/WIRE.md). The token lives in
// sessionStorage only and travels in the Authorization header, never in a URL.
// Writes are signed in the browser with the party's own key when one was
// imported (sign.js).

import { keyOf, signatureHeaders } from './sign.js';
import { retryAfterSeconds } from './busy.js';

const TOKEN_KEY = 'deconflict.token';

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// signingParty is the party whose stored key signs the writes.
let signingParty = '';

export function signAs(party) {
  signingParty = party;
}

export class APIError extends Error {
  // retryAfterS: the seconds of a Retry-After header (a 429 or 503), else
  // null (busy.js reads it and decides how long to wait).
  constructor(status, problem, retryAfterS = null) {
    const detail = problem && (problem.detail || problem.title);
    super(detail ? `${detail}${problem.field ? ` (${problem.field})` : ''}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.retryAfterS = retryAfterS;
  }
}

// AnswerLost is a request whose answer never came whole (the connection
// dropped, the network failed): the service may or may not have done it.
export class AnswerLost extends Error {
  constructor(cause) {
    super(`no answer from the service (${(cause && cause.message) || cause})`);
    this.answerLost = true;
  }
}

// exchange sends body as JSON, or text as it is (an uploaded file), with
// the Idempotency-Key idempotencyKey when one is given (the writes of
// docs/WIRE.md "Idempotent retries"), and returns the answer's data and
// whether it was kept from an earlier request with the same key
// (Idempotent-Replayed: true).
async function exchange(path, { method = 'GET', body, text: raw, signal, idempotencyKey = '' } = {}) {
  const headers = { Authorization: `Bearer ${savedToken()}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (raw !== undefined) headers['Content-Type'] = 'text/plain';
  // An sf-string: a random UUID needs no escaping.
  if (idempotencyKey) headers['Idempotency-Key'] = `"${idempotencyKey}"`;
  const payload = raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body);
  if (method !== 'GET' && signingParty) {
    const key = await keyOf(signingParty);
    if (key) Object.assign(headers, await signatureHeaders(key, method, new URL(path, location.href).href, payload, headers['Idempotency-Key'] || ''));
  }
  let res;
  let text;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: payload,
      signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    text = await res.text();
  } catch (err) {
    // A request the page aborted is not an answer lost.
    if (err && err.name === 'AbortError') throw err;
    throw new AnswerLost(err);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new APIError(res.status, data, retryAfterSeconds(res.headers.get('Retry-After')));
  return { data, replayed: res.headers.get('Idempotent-Replayed') === 'true' };
}

// request sends body as JSON, or text as it is (an uploaded file), and
// returns the answer's data.
export async function request(path, options = {}) {
  return (await exchange(path, options)).data;
}

// requestText GETs a text/plain resource (a signed note).
export async function requestText(path) {
  const res = await fetch(path, {
    headers: { Authorization: `Bearer ${savedToken()}`, Accept: 'text/plain' },
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await res.text();
  if (!res.ok) throw new APIError(res.status, null, retryAfterSeconds(res.headers.get('Retry-After')));
  return text;
}

export const api = {
  me: () => request('/v1/me'),
  rules: () => request('/v1/rules'),
  proposals: () => request('/v1/rules/proposals'),
  // The writes that take an Idempotency-Key take it as their last
  // argument (writes.js gives one per action) and answer {data, replayed}.
  acceptRules: (version, rulesSHA256, key) => exchange(`/v1/rules/${encodeURIComponent(version)}/accept`, { method: 'POST', body: { rules_sha256: rulesSHA256 }, idempotencyKey: key }),
  rejectRules: (version, reason, key) =>
    exchange(`/v1/rules/${encodeURIComponent(version)}/reject`, { method: 'POST', body: reason ? { reason } : {}, idempotencyKey: key }),
  tracks: (bbox, signal) => request(`/v1/tracks?bbox=${bbox.map((v) => v.toFixed(4)).join(',')}`, { signal }),
  volumes: (from, to) =>
    request(`/v1/volumes?bbox=-180,-85,180,85&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
  // What an airspace file (format openair or geojson) would declare;
  // query holds start and end. Nothing is written.
  preview: (format, query, text) =>
    request(`/v1/volumes/preview?${new URLSearchParams({ format, ...query })}`, { method: 'POST', text }),
  createVolume: (input, key) => exchange('/v1/volumes', { method: 'POST', body: input, idempotencyKey: key }),
  alerts: () => request('/v1/alerts'),
  // The bands and suggestions of the party's own aircraft in an alert.
  resolution: (id) => request(`/v1/alerts/${encodeURIComponent(id)}/resolution`),
  // The nearest conflict-free variants of a volume write; nothing is written.
  alternatives: (input) => request('/v1/volumes/alternatives', { method: 'POST', body: input }),
  messages: () => request('/v1/hotline/messages'),
  send: (msg, key) => exchange('/v1/hotline/messages', { method: 'POST', body: msg, idempotencyKey: key }),
  logStatus: () => request('/v1/log/witnesses'),
  logKey: () => request('/v1/log/key'),
  logCheckpoint: () => requestText('/v1/log/checkpoint'),
  ack: (id, reply) =>
    request(`/v1/hotline/messages/${encodeURIComponent(id)}/ack`, { method: 'POST', body: reply ? { reply } : {} }),
};
