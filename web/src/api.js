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

// request sends body as JSON, or text as it is (an uploaded file).
export async function request(path, { method = 'GET', body, text: raw, signal } = {}) {
  const headers = { Authorization: `Bearer ${savedToken()}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (raw !== undefined) headers['Content-Type'] = 'text/plain';
  const payload = raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body);
  if (method !== 'GET' && signingParty) {
    const key = await keyOf(signingParty);
    if (key) Object.assign(headers, await signatureHeaders(key, method, new URL(path, location.href).href, payload));
  }
  const res = await fetch(path, {
    method,
    headers,
    body: payload,
    signal,
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new APIError(res.status, data, retryAfterSeconds(res.headers.get('Retry-After')));
  return data;
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
  acceptRules: (version) => request(`/v1/rules/${encodeURIComponent(version)}/accept`, { method: 'POST', body: {} }),
  rejectRules: (version, reason) => request(`/v1/rules/${encodeURIComponent(version)}/reject`, { method: 'POST', body: reason ? { reason } : {} }),
  tracks: (bbox, signal) => request(`/v1/tracks?bbox=${bbox.map((v) => v.toFixed(4)).join(',')}`, { signal }),
  volumes: (from, to) =>
    request(`/v1/volumes?bbox=-180,-85,180,85&from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
  // What an airspace file (format openair or geojson) would declare;
  // query holds start and end. Nothing is written.
  preview: (format, query, text) =>
    request(`/v1/volumes/preview?${new URLSearchParams({ format, ...query })}`, { method: 'POST', text }),
  createVolume: (input) => request('/v1/volumes', { method: 'POST', body: input }),
  alerts: () => request('/v1/alerts'),
  // The bands and suggestions of the party's own aircraft in an alert.
  resolution: (id) => request(`/v1/alerts/${encodeURIComponent(id)}/resolution`),
  // The nearest conflict-free variants of a volume write; nothing is written.
  alternatives: (input) => request('/v1/volumes/alternatives', { method: 'POST', body: input }),
  messages: () => request('/v1/hotline/messages'),
  send: (msg) => request('/v1/hotline/messages', { method: 'POST', body: msg }),
  logStatus: () => request('/v1/log/witnesses'),
  logKey: () => request('/v1/log/key'),
  logCheckpoint: () => requestText('/v1/log/checkpoint'),
  ack: (id, reply) =>
    request(`/v1/hotline/messages/${encodeURIComponent(id)}/ack`, { method: 'POST', body: reply ? { reply } : {} }),
};
