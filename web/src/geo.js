// Web Mercator in world units (x and y in [0, 1], y down), and the unit
// conversions the console shows. Inside the page everything is meters,
// seconds and degrees, as on the wire; feet and flight levels exist only in
// the labels.

const EARTH_RADIUS_M = 6371008.8;
const MAX_LAT = 85.05112878;

export function projX(lonDeg) {
  return (lonDeg + 180) / 360;
}

export function projY(latDeg) {
  const lat = (Math.max(-MAX_LAT, Math.min(MAX_LAT, latDeg)) * Math.PI) / 180;
  return (1 - Math.log(Math.tan(lat) + 1 / Math.cos(lat)) / Math.PI) / 2;
}

export function unprojX(x) {
  return x * 360 - 180;
}

export function unprojY(y) {
  return (Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180) / Math.PI;
}

// World units per second for a velocity east/north in m/s at a latitude.
export function worldVelocity(latDeg, velEastMps, velNorthMps) {
  const k = 1 / (2 * Math.PI * EARTH_RADIUS_M * Math.cos((latDeg * Math.PI) / 180));
  return [velEastMps * k, -velNorthMps * k];
}

// Moves a point by a distance east and north in meters (flat-earth step,
// good enough for drawing over a few hundred kilometres).
export function offset(lonDeg, latDeg, eastM, northM) {
  const lat = latDeg + (northM / EARTH_RADIUS_M) * (180 / Math.PI);
  const lon = lonDeg + (eastM / (EARTH_RADIUS_M * Math.cos((latDeg * Math.PI) / 180))) * (180 / Math.PI);
  return [lon, lat];
}

export function circleRing(lonDeg, latDeg, radiusM, n = 64) {
  const ring = [];
  for (let i = 0; i <= n; i++) {
    const a = (i / n) * 2 * Math.PI;
    ring.push(offset(lonDeg, latDeg, radiusM * Math.sin(a), radiusM * Math.cos(a)));
  }
  return ring;
}

// The rings that draw an orbit or a corridor: every point within halfM of
// its line, one capsule (two half circles joined) per leg, drawn together.
export function tubeRings(line, halfM, n = 32) {
  if (line.length === 1) return [circleRing(line[0][0], line[0][1], halfM, 2 * n)];
  const rings = [];
  for (let i = 0; i + 1 < line.length; i++) {
    const [lon0, lat0] = line[i];
    const [lon1, lat1] = line[i + 1];
    // Bearing of the leg in a flat frame at its start.
    const east = (lon1 - lon0) * Math.cos((lat0 * Math.PI) / 180);
    const north = lat1 - lat0;
    const b = Math.atan2(east, north);
    const ring = [];
    for (let k = 0; k <= n; k++) {
      const a = b + Math.PI / 2 - (k / n) * Math.PI; // right side, round the end, left side
      ring.push(offset(lon1, lat1, halfM * Math.sin(a), halfM * Math.cos(a)));
    }
    for (let k = 0; k <= n; k++) {
      const a = b - Math.PI / 2 - (k / n) * Math.PI;
      ring.push(offset(lon0, lat0, halfM * Math.sin(a), halfM * Math.cos(a)));
    }
    ring.push(ring[0]);
    rings.push(ring);
  }
  return rings;
}

// The rings of a footprint of any type, [lon, lat] positions.
export function footprintRings(fp) {
  if (!fp) return [];
  if (fp.type === 'Circle' && Array.isArray(fp.center)) return [circleRing(fp.center[0], fp.center[1], fp.radius_m || 0)];
  if (fp.type === 'Polygon' && Array.isArray(fp.coordinates)) return fp.coordinates;
  if (fp.type === 'MultiPolygon' && Array.isArray(fp.coordinates)) return fp.coordinates.flat();
  if (fp.type === 'Orbit' && Array.isArray(fp.points)) return tubeRings(fp.points, (fp.width_m || 0) / 2);
  if (fp.type === 'Corridor' && Array.isArray(fp.line)) return tubeRings(fp.line, (fp.width_m || 0) / 2);
  return [];
}

const M_PER_FT = 0.3048;

export function flightLevel(altM) {
  return Math.round(altM / M_PER_FT / 100);
}

export function formatAlt(altM) {
  return `${Math.round(altM)} m (FL${String(flightLevel(altM)).padStart(3, '0')})`;
}

export function formatDistance(m) {
  return m >= 10000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

export function formatDuration(s) {
  const sign = s < 0 ? '-' : '';
  const t = Math.abs(Math.round(s));
  const m = Math.floor(t / 60);
  return `${sign}${m}:${String(t % 60).padStart(2, '0')}`;
}

export function formatTime(ms) {
  if (!Number.isFinite(ms)) return '?';
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

// formatClock is a moment in UTC to the second, as a list reads it beside
// others: "14:03:07Z" on the UTC day of nowMs, with its date on any other
// day ("6 Dec 14:03:07Z", and the year when it is not nowMs's), so that an
// acknowledgment of yesterday is not read as one of this morning.
export function formatClock(ms, nowMs = Date.now()) {
  if (!Number.isFinite(ms)) return '?';
  const d = new Date(ms);
  const clock = `${d.toISOString().slice(11, 19)}Z`;
  const day = (x) => Math.floor(x / 86400000);
  if (day(ms) === day(nowMs)) return clock;
  const year = d.getUTCFullYear() !== new Date(nowMs).getUTCFullYear() ? ` ${d.getUTCFullYear()}` : '';
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}${year} ${clock}`;
}
