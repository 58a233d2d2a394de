// Signs the party's writes in the browser (RFC 9421 HTTP Message Signatures,
// ed25519, docs/WIRE.md "Signed writes"). The party's PKCS#8 PEM key is
// imported once into a non-extractable WebCrypto Ed25519 key, kept in this
// browser's IndexedDB; the private key never leaves the browser and is
// never readable by script again.

const DB_NAME = 'deconflict-keys';
const STORE = 'keys';
const enc = new TextEncoder();

function b64(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

function b64url(bytes) {
  return b64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function openDB() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function dbDo(mode, fn) {
  const db = await openDB();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req && req.result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

// The key of each party, once loaded: {key: CryptoKey, keyid: string}.
const loaded = new Map();

// importKey reads a PKCS#8 PEM Ed25519 private key for party and keeps it,
// non-extractable, in IndexedDB. Returns its key id.
export async function importKey(party, pem) {
  const body = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  const der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  // Imported extractable once, only to learn the public key (its key id);
  // that copy is dropped at once.
  const probe = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', probe);
  const pub = Uint8Array.from(atob(jwk.x.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const keyid = b64url(await crypto.subtle.digest('SHA-256', pub));
  const key = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  der.fill(0);
  await dbDo('readwrite', (s) => s.put({ key, keyid }, party));
  loaded.set(party, { key, keyid });
  return keyid;
}

// keyOf returns the stored key of party, or null.
export async function keyOf(party) {
  if (loaded.has(party)) return loaded.get(party);
  let rec = null;
  try {
    rec = await dbDo('readonly', (s) => s.get(party));
  } catch {
    rec = null;
  }
  if (rec) loaded.set(party, rec);
  return rec || null;
}

export async function forgetKey(party) {
  loaded.delete(party);
  await dbDo('readwrite', (s) => s.delete(party));
}

// signatureHeaders signs a write: Content-Digest (sha-256) when there is
// a body, and Signature-Input / Signature covering "@method",
// "@target-uri", "content-digest" and, when the write carries one, the
// Idempotency-Key field (its value as sent, idempotencyKeyField: the
// server refuses a signed write whose key the signature does not cover,
// since the key decides whether a retry writes anything), with created,
// keyid and a nonce.
export async function signatureHeaders({ key, keyid }, method, url, body, idempotencyKeyField = '') {
  const components = ['"@method"', '"@target-uri"'];
  const lines = [`"@method": ${method}`, `"@target-uri": ${url}`];
  const headers = {};
  if (body !== undefined && body.length > 0) {
    const digest = `sha-256=:${b64(await crypto.subtle.digest('SHA-256', enc.encode(body)))}:`;
    headers['Content-Digest'] = digest;
    components.push('"content-digest"');
    lines.push(`"content-digest": ${digest}`);
  }
  if (idempotencyKeyField) {
    components.push('"idempotency-key"');
    lines.push(`"idempotency-key": ${idempotencyKeyField.trim()}`);
  }
  const nonce = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const created = Math.floor(Date.now() / 1000);
  const input = `(${components.join(' ')});created=${created};keyid="${keyid}";nonce="${nonce}"`;
  lines.push(`"@signature-params": ${input}`);
  const sig = await crypto.subtle.sign({ name: 'Ed25519' }, key, enc.encode(lines.join('\n')));
  headers['Signature-Input'] = `sig1=${input}`;
  headers.Signature = `sig1=:${b64(sig)}:`;
  return headers;
}
