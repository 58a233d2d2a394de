// The party's own check of the published record, in the browser: the
// console does not take the server's word for who cosigned the record. It
// verifies the log's checkpoint (a C2SP tlog-checkpoint, signed as a C2SP
// signed note) with the log's key, pinned in this browser the first time it
// is seen, and every witness's C2SP tlog-cosignature (cosignature/v1) with
// the witness keys of the agreed rules, using WebCrypto's Ed25519. A party
// whose witness has no valid cosignature on the published checkpoint, or
// only one older than the rules' witness_max_age_s, has not verified the
// record (its witness refused the checkpoint, or the log stopped pushing to
// it). The Go side (internal/translog) verifies the same notes with
// golang.org/x/mod/sumdb/note; the console tests check both agree.

const enc = new TextEncoder();

function unb64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

// parseVKey reads a signed-note verifier key "name+hash+base64(type || key)".
function parseVKey(vkey) {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey || '');
  if (!m) throw new Error(`malformed verifier key ${vkey}`);
  const raw = unb64(m[3]);
  if (raw.length !== 33) throw new Error(`verifier key ${m[1]}: not an Ed25519 key`);
  return { name: m[1], hash: parseInt(m[2], 16) >>> 0, type: raw[0], pub: raw.slice(1) };
}

// openNote splits a signed note into its text and signature lines
// ({name, blob}); null when it is not a note.
function openNote(note) {
  const cut = note.lastIndexOf('\n\n');
  if (cut < 0 || !note.endsWith('\n')) return null;
  const body = note.slice(0, cut + 1);
  const sigs = [];
  for (const line of note.slice(cut + 2).split('\n')) {
    if (line === '') continue;
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) return null;
    sigs.push({ name: m[1], blob: unb64(m[2]) });
  }
  return { body, sigs };
}

function keyHashOf(blob) {
  return ((blob[0] << 24) | (blob[1] << 16) | (blob[2] << 8) | blob[3]) >>> 0;
}

async function ed25519Verify(pub, sig, msg) {
  try {
    const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, msg);
  } catch {
    return false;
  }
}

// verifyCheckpoint checks a published checkpoint note against the log's
// verifier key and the witnesses of the rules ([{party, vkey}]). It returns
// {ok, error, size, cosigned: [{party, timeMs}], unverified: [party]}:
// ok false (every party unverified) when the log's own signature fails.
export async function verifyCheckpoint(note, logVKey, witnesses, maxAgeS, nowMs) {
  const parties = (witnesses || []).map((w) => w.party);
  const fail = (error) => ({ ok: false, error, size: 0, cosigned: [], unverified: parties });
  let log;
  try {
    log = parseVKey(logVKey);
  } catch (err) {
    return fail(err.message);
  }
  const n = openNote(note || '');
  if (!n) return fail('the checkpoint is not a signed note');
  const lines = n.body.split('\n');
  if (lines[0] !== log.name || !/^\d+$/.test(lines[1] || '')) return fail('the checkpoint is not one of this log');
  const logSig = n.sigs.find((s) => s.name === log.name && s.blob.length === 68 && keyHashOf(s.blob) === log.hash);
  if (log.type !== 1 || !logSig || !(await ed25519Verify(log.pub, logSig.blob.slice(4), enc.encode(n.body)))) {
    return fail("the checkpoint does not verify with the log's key");
  }
  const cosigned = [];
  const unverified = [];
  for (const w of witnesses || []) {
    let wk;
    try {
      wk = parseVKey(w.vkey);
    } catch {
      unverified.push(w.party);
      continue;
    }
    let best = null;
    for (const s of n.sigs) {
      if (wk.type !== 4 || s.name !== wk.name || s.blob.length !== 76 || keyHashOf(s.blob) !== wk.hash) continue;
      const view = new DataView(s.blob.buffer, s.blob.byteOffset + 4, 8);
      const ts = view.getBigUint64(0);
      const msg = enc.encode(`cosignature/v1\ntime ${ts}\n${n.body}`);
      if (await ed25519Verify(wk.pub, s.blob.slice(12), msg)) {
        const timeMs = Number(ts) * 1000;
        if (!best || timeMs > best.timeMs) best = { party: w.party, timeMs };
      }
    }
    if (best && nowMs - best.timeMs <= maxAgeS * 1000) cosigned.push(best);
    else unverified.push(w.party);
  }
  return { ok: true, error: '', size: Number(lines[1]), cosigned, unverified };
}

const PIN = 'deconflict.log-vkey';

// pinLogKey keeps the first log key this browser saw for origin and
// reports whether vkey is that key.
export function pinLogKey(origin, vkey) {
  const k = `${PIN}:${location.host}:${origin}`;
  const pinned = localStorage.getItem(k);
  if (!pinned) {
    localStorage.setItem(k, vkey);
    return true;
  }
  return pinned === vkey;
}
