// The map: Web Mercator drawn on two canvases, with no tiles and no network.
// The base canvas (land, coasts, borders, volumes) is redrawn only when the
// view or the volumes change; the live canvas (tracks, trails, predicted
// conflicts) every animation frame, with one path per party and style so
// that 5,000 aircraft cost a handful of draw calls rather than DOM nodes.
// Labels are placed each frame without overlap (labels.js). Filters show
// own, others' or only conflicting traffic and volumes; the selected
// alert's aircraft and volumes stand out and the rest is dimmed; a click
// picks an aircraft or a volume and shows its details.

import { feature, mesh } from 'topojson-client';
import { projX, projY, unprojX, unprojY, worldVelocity, footprintRings, formatAlt, formatDuration, formatTime } from './geo.js';
import { level, markPath, isDrone, classLabel, MARK_RADIUS, DRONE_MARK_RADIUS } from './palette.js';
import { LabelPlacer, aroundPoint, aroundRing } from './labels.js';
import { volumeText } from './threads.js';
import { say } from './live.js';
import { visible } from './dom.js';

const TRAIL_POINTS = 8;
const HEADING_S = 60;
const MARK_BATCH = 32;
// With nothing new, the live layer is redrawn ten times a second: enough for
// dead-reckoned motion and countdowns, and a wall screen stays cool.
const IDLE_REDRAW_MS = 100;
const MIN_SCALE = 256;
const MAX_SCALE = 256 * 2 ** 16;
// What is not selected while an alert is, drawn this opaque.
const DIM_ALPHA = 0.25;
// A press that moves less than this is a click (a pick), not a drag.
const CLICK_PX = 4;

export class MapView {
  constructor({ container, base, live, tooltip, details, styles }) {
    this.container = container;
    this.base = base;
    this.live = live;
    this.tooltip = tooltip;
    this.details = details;
    this.styles = styles;
    // willReadFrequently keeps the canvases on the CPU. Measured in headless
    // Chromium (software GL), thousands of small paths draw about twice as
    // fast there than through the emulated GPU (see BENCHMARKS.md).
    this.baseCtx = base.getContext('2d', { willReadFrequently: true });
    this.liveCtx = live.getContext('2d', { willReadFrequently: true });
    // Start over the Levant.
    this.cx = projX(37.5);
    this.cy = projY(35);
    this.scale = 256 * 2 ** 7.5;
    this.width = 0;
    this.height = 0;
    this.dpr = 1;
    this.land = [];
    this.coasts = [];
    this.borders = [];
    this.volumes = [];
    this.preview = [];
    this.alternative = null; // { alt, rings }: the alternative pointed at
    this.volumeTime = Date.now();
    this.tracks = new Map();
    this.alerts = [];
    this.focus = null;
    this.baseDirty = true;
    this.liveDirty = true;
    this.lastLive = 0;
    // What the last frame drew; lit and litVolumes are what the selected
    // alert highlights (empty without a selection).
    this.drawn = { tracks: 0, byParty: {}, conflicts: 0, volumes: 0, volumeIds: [], litVolumes: [], preview: 0, alternative: '', labels: [], dimmed: 0, lit: [] };
    this.labeler = new LabelPlacer();
    // Off only to measure what placing labels costs (a test hook).
    this.labelsOn = true;
    this.textWidths = new Map();
    this.filter = { own: true, others: true, conflictingOnly: false };
    this.selectedAlertId = '';
    this.picked = null; // {kind: 'track', key} or {kind: 'volume', id}
    this.alerted = new Set(); // party/aircraft of every open alert
    this.conflicting = new Set(); // ids of volumes in a conflict or alert
    this.frameCosts = [];
    this.frameTracks = []; // tracks drawn in each frame of frameCosts
    this.labelCosts = [];
    this.screen = new Float32Array(0);
    this.screenTracks = [];
    this.resize();
    new ResizeObserver(() => this.resize()).observe(container);
    this.bindInput();
  }

  setAtlas(topo) {
    const project = (ring) => {
      const pts = new Float64Array(ring.length * 2);
      let minX = Infinity;
      let minY = Infinity;
      let maxX = -Infinity;
      let maxY = -Infinity;
      ring.forEach(([lon, lat], i) => {
        const x = projX(lon);
        const y = projY(lat);
        pts[2 * i] = x;
        pts[2 * i + 1] = y;
        minX = Math.min(minX, x);
        minY = Math.min(minY, y);
        maxX = Math.max(maxX, x);
        maxY = Math.max(maxY, y);
      });
      return { pts, minX, minY, maxX, maxY };
    };
    const land = feature(topo, topo.objects.land);
    const polys = [];
    for (const f of land.features || [land]) {
      const g = f.geometry;
      const list = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
      for (const poly of list) polys.push(poly.map(project));
    }
    this.land = polys;
    this.coasts = mesh(topo, topo.objects.land).coordinates.map(project);
    this.borders = mesh(topo, topo.objects.countries, (a, b) => a !== b).coordinates.map(project);
    this.baseDirty = true;
  }

  setVolumes(volumes, timeMs) {
    this.volumes = volumes.map((v) => {
      const projected = footprintRings(v.footprint).map((r) => r.map(([lon, lat]) => [projX(lon), projY(lat)]));
      return { v, rings: projected, start: Date.parse(v.start), end: Date.parse(v.end) };
    });
    this.volumeTime = timeMs;
    this.findConflicting();
    this.baseDirty = true;
  }

  // findConflicting marks what the "conflicting only" filter shows: the
  // aircraft of every open alert, the volumes in a strategic conflict or
  // named by an alert, and the volumes an alerted aircraft flies in.
  findConflicting() {
    this.alerted = new Set();
    const ids = new Set();
    const points = [];
    for (const a of this.alerts) {
      if (a.state === 'cleared') continue;
      for (const ac of a.aircraft || []) {
        this.alerted.add(`${ac.party}/${ac.aircraft}`);
        points.push([projX(ac.lon), projY(ac.lat)]);
      }
      for (const r of a.volumes || []) ids.add(r.id);
    }
    for (const vol of this.volumes) {
      const cs = vol.v.conflicts || [];
      if (cs.length) ids.add(vol.v.id);
      for (const c of cs) ids.add(c.id);
      if (vol.rings.length && points.some(([x, y]) => pointInRing(x, y, vol.rings[0]))) ids.add(vol.v.id);
    }
    this.conflicting = ids;
  }

  // setFilter shows own and others' traffic and volumes, or only what is
  // in conflict: {own, others, conflictingOnly}.
  setFilter(f) {
    this.filter = { ...this.filter, ...f };
    this.baseDirty = true;
    this.liveDirty = true;
  }

  // selectAlert highlights alert a (null: none): its aircraft, and its
  // volumes and those its aircraft fly in; everything else is dimmed.
  selectAlert(a) {
    const id = a ? String(a.id) : '';
    if (id === this.selectedAlertId) return;
    this.selectedAlertId = id;
    this.baseDirty = true;
    this.liveDirty = true;
  }

  // selection is what the selected alert highlights, or null.
  selection() {
    if (!this.selectedAlertId) return null;
    const a = this.alerts.find((x) => String(x.id) === this.selectedAlertId && x.state !== 'cleared');
    if (!a) return null;
    const keys = new Set((a.aircraft || []).map((ac) => `${ac.party}/${ac.aircraft}`));
    const volumes = new Set((a.volumes || []).map((r) => r.id));
    for (const ac of a.aircraft || []) {
      const live = this.tracks.get(`${ac.party}/${ac.aircraft}`);
      const x = live ? live.x : projX(ac.lon);
      const y = live ? live.y : projY(ac.lat);
      for (const vol of this.volumes) if (vol.rings.length && pointInRing(x, y, vol.rings[0])) volumes.add(vol.v.id);
    }
    return { keys, volumes };
  }

  trackShown(tr) {
    const own = tr.t.party === this.styles.own;
    if (!(own ? this.filter.own : this.filter.others)) return false;
    return !this.filter.conflictingOnly || this.alerted.has(tr.key);
  }

  volumeShown(vol) {
    const own = vol.v.party === this.styles.own;
    if (!(own ? this.filter.own : this.filter.others)) return false;
    return !this.filter.conflictingOnly || this.conflicting.has(vol.v.id);
  }

  // visibleVolumes are the active volumes the filters show.
  visibleVolumes() {
    return this.activeVolumes().filter((vol) => this.volumeShown(vol));
  }

  // The volumes a dropped file would declare, drawn over the others until
  // the import is confirmed or cancelled: items of POST /v1/volumes/preview
  // with an input (ok or conflicting).
  setPreview(items) {
    this.preview = items
      .filter((it) => it.input)
      .map((it) => ({
        it,
        rings: footprintRings(it.input.footprint).map((r) => r.map(([lon, lat]) => [projX(lon), projY(lat)])),
      }));
    this.baseDirty = true;
  }

  // The alternative of a conflicting import pointed at (an item of its
  // alternatives), drawn over the preview; null for none.
  setAlternative(alt) {
    this.alternative = alt
      ? { alt, rings: footprintRings(alt.footprint).map((r) => r.map(([lon, lat]) => [projX(lon), projY(lat)])) }
      : null;
    this.baseDirty = true;
  }

  setVolumeTime(timeMs) {
    this.volumeTime = timeMs;
    this.baseDirty = true;
  }

  // Replaces the track picture, keeping each aircraft's short trail.
  setTracks(list) {
    const next = new Map();
    for (const t of list) {
      const key = `${t.party}/${t.aircraft}`;
      const prev = this.tracks.get(key);
      const x = projX(t.lon);
      const y = projY(t.lat);
      const [vx, vy] = worldVelocity(t.lat, t.vel_east_mps || 0, t.vel_north_mps || 0);
      const timeMs = Date.parse(t.time);
      let trail = prev ? prev.trail : [];
      if (!prev || prev.x !== x || prev.y !== y) {
        trail = trail.concat([[x, y]]);
        if (trail.length > TRAIL_POINTS) trail = trail.slice(trail.length - TRAIL_POINTS);
      }
      next.set(key, { t, key, x, y, vx, vy, timeMs: Number.isFinite(timeMs) ? timeMs : Date.now(), trail });
    }
    this.tracks = next;
    this.liveDirty = true;
  }

  setAlerts(alerts) {
    this.alerts = alerts;
    this.findConflicting();
    // The dimming and the conflicting filter follow the alerts.
    if (this.selectedAlertId || this.filter.conflictingOnly) this.baseDirty = true;
    this.liveDirty = true;
  }

  resize() {
    const r = this.container.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, Math.round(r.width));
    this.height = Math.max(1, Math.round(r.height));
    for (const c of [this.base, this.live]) {
      c.width = Math.round(this.width * this.dpr);
      c.height = Math.round(this.height * this.dpr);
      c.style.width = `${this.width}px`;
      c.style.height = `${this.height}px`;
    }
    this.baseDirty = true;
  }

  toScreen(x, y) {
    return [(x - this.cx) * this.scale + this.width / 2, (y - this.cy) * this.scale + this.height / 2];
  }

  toWorld(sx, sy) {
    return [(sx - this.width / 2) / this.scale + this.cx, (sy - this.height / 2) / this.scale + this.cy];
  }

  // [minLon, minLat, maxLon, maxLat] of the view, with a margin.
  viewBBox() {
    const [x0, y0] = this.toWorld(-this.width * 0.25, -this.height * 0.25);
    const [x1, y1] = this.toWorld(this.width * 1.25, this.height * 1.25);
    const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));
    return [clamp(unprojX(x0), -180, 180), clamp(unprojY(y1), -85, 85), clamp(unprojX(x1), -180, 180), clamp(unprojY(y0), -85, 85)];
  }

  panBy(dx, dy) {
    this.cx -= dx / this.scale;
    this.cy -= dy / this.scale;
    this.cx = Math.max(0, Math.min(1, this.cx));
    this.cy = Math.max(0, Math.min(1, this.cy));
    this.baseDirty = true;
  }

  zoomBy(factor, sx = this.width / 2, sy = this.height / 2) {
    const [wx, wy] = this.toWorld(sx, sy);
    this.scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, this.scale * factor));
    this.cx = wx - (sx - this.width / 2) / this.scale;
    this.cy = wy - (sy - this.height / 2) / this.scale;
    this.baseDirty = true;
  }

  centerOn(lon, lat, minScale = 256 * 2 ** 9.5) {
    this.cx = projX(lon);
    this.cy = projY(lat);
    this.scale = Math.max(this.scale, minScale);
    this.baseDirty = true;
  }

  fit() {
    const pts = [];
    for (const tr of this.tracks.values()) pts.push([tr.x, tr.y]);
    for (const vol of this.activeVolumes()) for (const r of vol.rings) for (const p of r) pts.push(p);
    this.fitWorld(pts);
  }

  // Centres and scales the view on points in world units.
  fitWorld(pts) {
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (const [x, y] of pts) {
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x);
      maxY = Math.max(maxY, y);
    }
    if (!Number.isFinite(minX)) return;
    this.cx = (minX + maxX) / 2;
    this.cy = (minY + maxY) / 2;
    const span = Math.max(maxX - minX, maxY - minY, 1e-4);
    this.scale = Math.max(MIN_SCALE, Math.min(MAX_SCALE, (0.8 * Math.min(this.width, this.height)) / span));
    this.baseDirty = true;
  }

  bindInput() {
    const el = this.container;
    let drag = null;
    el.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY, id: e.pointerId, x0: e.clientX, y0: e.clientY };
      el.setPointerCapture(e.pointerId);
    });
    el.addEventListener('pointermove', (e) => {
      if (drag && drag.id === e.pointerId) {
        this.panBy(e.clientX - drag.x, e.clientY - drag.y);
        drag.x = e.clientX;
        drag.y = e.clientY;
        this.hideTooltip();
        return;
      }
      const r = el.getBoundingClientRect();
      this.hover(e.clientX - r.left, e.clientY - r.top);
    });
    const end = () => {
      drag = null;
    };
    el.addEventListener('pointerup', (e) => {
      if (drag && drag.id === e.pointerId && Math.abs(e.clientX - drag.x0) + Math.abs(e.clientY - drag.y0) < CLICK_PX) {
        const r = el.getBoundingClientRect();
        this.pick(e.clientX - r.left, e.clientY - r.top);
      }
      end();
    });
    el.addEventListener('pointercancel', end);
    el.addEventListener('pointerleave', () => this.hideTooltip());
    el.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const r = el.getBoundingClientRect();
        this.zoomBy(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
      },
      { passive: false },
    );
    el.addEventListener('keydown', (e) => {
      const step = 80;
      const keys = {
        ArrowLeft: () => this.panBy(step, 0),
        ArrowRight: () => this.panBy(-step, 0),
        ArrowUp: () => this.panBy(0, step),
        ArrowDown: () => this.panBy(0, -step),
        '+': () => this.zoomBy(1.5),
        '=': () => this.zoomBy(1.5),
        '-': () => this.zoomBy(1 / 1.5),
        0: () => this.fit(),
      };
      const f = keys[e.key];
      if (f) {
        e.preventDefault();
        f();
      }
    });
  }

  hideTooltip() {
    this.tooltip.hidden = true;
  }

  // nearestTrack is the drawn aircraft within 10 px of a screen point.
  nearestTrack(sx, sy) {
    let best = null;
    let bestD = 10 * 10;
    for (let i = 0; i < this.screenTracks.length; i++) {
      const dx = this.screen[2 * i] - sx;
      const dy = this.screen[2 * i + 1] - sy;
      const d = dx * dx + dy * dy;
      if (d < bestD) {
        bestD = d;
        best = this.screenTracks[i];
      }
    }
    return best;
  }

  volumesAt(sx, sy) {
    const [wx, wy] = this.toWorld(sx, sy);
    return this.visibleVolumes().filter((vol) => vol.rings.length && pointInRing(wx, wy, vol.rings[0]));
  }

  trackLines(tr) {
    const t = tr.t;
    const speed = Math.hypot(t.vel_east_mps || 0, t.vel_north_mps || 0);
    return [`${t.callsign || t.aircraft} (${t.aircraft}) · ${t.party} · ${t.class || 'manned'}`, `${formatAlt(t.alt_m)} · ${Math.round(speed)} m/s · ${formatTime(tr.timeMs)}`];
  }

  volumeLines(vol) {
    const v = vol.v;
    return [`Volume ${volumeText(v)} · ${v.state}`, `${formatAlt(v.alt_lower_m)} to ${formatAlt(v.alt_upper_m)}`, `${formatTime(vol.start)} to ${formatTime(vol.end)}`];
  }

  // pick selects the aircraft or else the volume at a screen point (a
  // click), or nothing, and shows its details until the next pick.
  pick(sx, sy) {
    const tr = this.nearestTrack(sx, sy);
    const vols = tr ? [] : this.volumesAt(sx, sy);
    this.picked = tr ? { kind: 'track', key: tr.key } : vols.length ? { kind: 'volume', id: vols[vols.length - 1].v.id } : null;
    this.renderDetails();
    // The details change with every report: they are not a live region,
    // and what was picked is said once.
    const picked = this.details && !this.details.hidden ? this.details.querySelector('.details-text').textContent.split('\n')[0] : '';
    if (picked) say(`Selected: ${picked}`);
    this.baseDirty = true;
  }

  renderDetails() {
    if (!this.details) return;
    const p = this.picked;
    let lines = null;
    if (p && p.kind === 'track' && this.tracks.get(p.key)) lines = this.trackLines(this.tracks.get(p.key));
    const vol = p && p.kind === 'volume' ? this.volumes.find((x) => x.v.id === p.id) : null;
    if (vol) lines = this.volumeLines(vol);
    const body = this.details.querySelector('.details-text');
    this.details.hidden = !lines;
    const text = lines ? lines.join('\n') : '';
    const shown = visible(text);
    if (body.textContent !== shown) body.textContent = shown;
  }

  unpick() {
    this.picked = null;
    this.renderDetails();
    this.baseDirty = true;
  }

  hover(sx, sy) {
    const lines = [];
    const best = this.nearestTrack(sx, sy);
    if (best) lines.push(...this.trackLines(best));
    for (const vol of this.volumesAt(sx, sy)) lines.push(...this.volumeLines(vol));
    if (!lines.length) {
      this.hideTooltip();
      return;
    }
    this.tooltip.textContent = visible(lines.join('\n'));
    this.tooltip.hidden = false;
    const x = Math.min(sx + 14, this.width - 260);
    const y = Math.min(sy + 14, this.height - 90);
    this.tooltip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, y)}px)`;
  }

  activeVolumes() {
    const t = this.volumeTime;
    return this.volumes.filter((vol) => vol.start <= t && t < vol.end && vol.v.state !== 'withdrawn' && vol.v.state !== 'cancelled');
  }

  // Draws one frame: the base layer when it is stale, the live layer when
  // something changed or it is due. Returns the time spent, or -1 when there
  // was nothing to draw.
  frame(nowMs) {
    const animating = this.focus && nowMs - this.focus.at < 4000;
    if (!this.baseDirty && !this.liveDirty && !animating && nowMs - this.lastLive < IDLE_REDRAW_MS) return -1;
    const started = performance.now();
    if (this.baseDirty) {
      this.drawBase();
      this.baseDirty = false;
    }
    this.drawLive(nowMs);
    this.liveDirty = false;
    this.lastLive = nowMs;
    const cost = performance.now() - started;
    this.frameCosts.push(cost);
    this.frameTracks.push(this.drawn.tracks);
    if (this.frameCosts.length > 600) {
      this.frameCosts.splice(0, this.frameCosts.length - 600);
      this.frameTracks.splice(0, this.frameTracks.length - 600);
    }
    return cost;
  }

  strokeLines(ctx, lines) {
    const [vx0, vy0] = this.toWorld(0, 0);
    const [vx1, vy1] = this.toWorld(this.width, this.height);
    for (const l of lines) {
      if (l.maxX < vx0 || l.minX > vx1 || l.maxY < vy0 || l.minY > vy1) continue;
      this.addLine(ctx, l.pts, false);
    }
  }

  // Adds a projected line to the path, dropping points less than a pixel
  // apart so that the whole world costs little when zoomed out.
  addLine(ctx, pts, close) {
    let lx = NaN;
    let ly = NaN;
    const n = pts.length / 2;
    for (let i = 0; i < n; i++) {
      const sx = (pts[2 * i] - this.cx) * this.scale + this.width / 2;
      const sy = (pts[2 * i + 1] - this.cy) * this.scale + this.height / 2;
      if (i === 0) {
        ctx.moveTo(sx, sy);
      } else if (Math.abs(sx - lx) + Math.abs(sy - ly) >= 1 || i === n - 1) {
        ctx.lineTo(sx, sy);
      } else {
        continue;
      }
      lx = sx;
      ly = sy;
    }
    if (close) ctx.closePath();
  }

  drawBase() {
    const ctx = this.baseCtx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = '#0b1620';
    ctx.fillRect(0, 0, this.width, this.height);

    const [vx0, vy0] = this.toWorld(0, 0);
    const [vx1, vy1] = this.toWorld(this.width, this.height);
    ctx.beginPath();
    for (const poly of this.land) {
      const outer = poly[0];
      if (outer.maxX < vx0 || outer.minX > vx1 || outer.maxY < vy0 || outer.minY > vy1) continue;
      for (const ring of poly) this.addLine(ctx, ring.pts, true);
    }
    ctx.fillStyle = '#1f2a33';
    ctx.fill('evenodd');

    this.drawGraticule(ctx);

    ctx.beginPath();
    this.strokeLines(ctx, this.coasts);
    ctx.strokeStyle = '#8fa3b3';
    ctx.lineWidth = 1.2;
    ctx.setLineDash([]);
    ctx.stroke();

    ctx.beginPath();
    this.strokeLines(ctx, this.borders);
    ctx.strokeStyle = '#7c8b96';
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.stroke();
    ctx.setLineDash([]);

    let drawn = 0;
    const ids = [];
    const litIds = [];
    const sel = this.selection();
    const picked = this.picked && this.picked.kind === 'volume' ? this.picked.id : '';
    for (const vol of this.visibleVolumes()) {
      const own = vol.v.party === this.styles.own;
      const colour = this.styles.colour(vol.v.party);
      const lit = (sel && sel.volumes.has(vol.v.id)) || vol.v.id === picked;
      const alpha = sel && !lit ? DIM_ALPHA : 1;
      ctx.beginPath();
      for (const ring of vol.rings) {
        ring.forEach(([x, y], i) => {
          const [sx, sy] = this.toScreen(x, y);
          if (i === 0) ctx.moveTo(sx, sy);
          else ctx.lineTo(sx, sy);
        });
        ctx.closePath();
      }
      ctx.globalAlpha = (lit ? 0.3 : 0.07) * alpha;
      ctx.fillStyle = colour;
      ctx.fill('evenodd');
      ctx.globalAlpha = alpha;
      ctx.strokeStyle = colour;
      ctx.lineWidth = lit ? 3.5 : 1.5;
      // Own volumes solid, others dashed: the pattern tells them apart too.
      ctx.setLineDash(own ? [] : [8, 4]);
      ctx.stroke();
      if (lit) {
        // A white edge inside the highlight: not colour alone.
        ctx.strokeStyle = '#ffffff';
        ctx.lineWidth = 1;
        ctx.setLineDash([]);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      drawn++;
      ids.push(vol.v.id);
      if (sel && lit) litIds.push(vol.v.id);
    }
    this.drawn.volumes = drawn;
    this.drawn.volumeIds = ids;
    this.drawn.litVolumes = litIds;
    this.drawPreview(ctx);
  }

  // Preview volumes: white dashes for those that would be declared, the
  // warning colour (and denser dashes) for those that conflict.
  drawPreview(ctx) {
    let n = 0;
    for (const p of this.preview) {
      const conflicting = p.it.status === 'conflicting';
      const colour = conflicting ? '#d55e00' : '#ffffff';
      ctx.beginPath();
      for (const ring of p.rings) {
        ring.forEach(([x, y], i) => {
          const [sx, sy] = this.toScreen(x, y);
          if (i === 0) ctx.moveTo(sx, sy);
          else ctx.lineTo(sx, sy);
        });
        ctx.closePath();
      }
      ctx.globalAlpha = 0.12;
      ctx.fillStyle = colour;
      ctx.fill('nonzero');
      ctx.globalAlpha = 1;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.setLineDash(conflicting ? [3, 3] : [10, 5]);
      ctx.stroke();
      ctx.setLineDash([]);
      if (p.rings.length && p.rings[0].length) {
        const [sx, sy] = this.toScreen(p.rings[0][0][0], p.rings[0][0][1]);
        ctx.fillStyle = colour;
        ctx.fillText(visible(`${p.it.name}${conflicting ? ' (conflict)' : ''}`, 200), sx + 4, sy + 14);
      }
      n++;
    }
    this.drawn.preview = n;
    this.drawAlternative(ctx);
  }

  // The alternative pointed at: bluish green, solid, labelled with its band
  // and window (its footprint is the conflicting volume's own).
  drawAlternative(ctx) {
    const a = this.alternative;
    this.drawn.alternative = '';
    if (!a) return;
    const colour = '#009e73';
    ctx.beginPath();
    for (const ring of a.rings) {
      ring.forEach(([x, y], i) => {
        const [sx, sy] = this.toScreen(x, y);
        if (i === 0) ctx.moveTo(sx, sy);
        else ctx.lineTo(sx, sy);
      });
      ctx.closePath();
    }
    ctx.globalAlpha = 0.18;
    ctx.fillStyle = colour;
    ctx.fill('nonzero');
    ctx.globalAlpha = 1;
    ctx.strokeStyle = colour;
    ctx.lineWidth = 3;
    ctx.stroke();
    const label = `alternative ${Math.round(a.alt.alt_lower_m)}–${Math.round(a.alt.alt_upper_m)} m, ${formatTime(Date.parse(a.alt.start))} to ${formatTime(Date.parse(a.alt.end))}`;
    if (a.rings.length && a.rings[0].length) {
      const [sx, sy] = this.toScreen(a.rings[0][0][0], a.rings[0][0][1]);
      ctx.fillStyle = colour;
      ctx.fillText(label, sx + 4, sy + 30);
    }
    this.drawn.alternative = label;
  }

  drawGraticule(ctx) {
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(this.width, this.height);
    const spanDeg = unprojX(x1) - unprojX(x0);
    const step = spanDeg > 90 ? 30 : spanDeg > 30 ? 10 : spanDeg > 8 ? 2 : spanDeg > 3 ? 1 : 0.25;
    ctx.beginPath();
    for (let lon = Math.ceil(unprojX(x0) / step) * step; lon <= unprojX(x1); lon += step) {
      const [sx] = this.toScreen(projX(lon), 0);
      ctx.moveTo(sx, 0);
      ctx.lineTo(sx, this.height);
    }
    for (let lat = Math.ceil(unprojY(y1) / step) * step; lat <= unprojY(y0); lat += step) {
      const [, sy] = this.toScreen(0, projY(lat));
      ctx.moveTo(0, sy);
      ctx.lineTo(this.width, sy);
    }
    ctx.strokeStyle = 'rgba(143,163,179,0.15)';
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  drawLive(nowMs) {
    const ctx = this.liveCtx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);

    const sel = this.selection();
    const groups = new Map();
    const n = this.tracks.size;
    if (this.screen.length < 2 * n) this.screen = new Float32Array(2 * n);
    this.screenTracks.length = 0;
    const byParty = {};
    const half = { w: this.width / 2, h: this.height / 2 };
    let dimmed = 0;
    const lit = [];
    for (const tr of this.tracks.values()) {
      if (!this.trackShown(tr)) continue;
      const dt = Math.max(0, Math.min(30, (nowMs - tr.timeMs) / 1000));
      const x = tr.x + tr.vx * dt;
      const y = tr.y + tr.vy * dt;
      const sx = (x - this.cx) * this.scale + half.w;
      const sy = (y - this.cy) * this.scale + half.h;
      if (sx < -20 || sy < -20 || sx > this.width + 20 || sy > this.height + 20) continue;
      // One group per party and emphasis, so that a frame stays a few
      // paths whatever the number of aircraft.
      const dim = sel !== null && !sel.keys.has(tr.key);
      if (dim) dimmed++;
      else if (sel) lit.push(tr.key);
      const gk = `${dim ? 1 : 0}${tr.t.party}`;
      let g = groups.get(gk);
      if (!g) {
        g = { party: tr.t.party, dim, list: [] };
        groups.set(gk, g);
      }
      g.list.push([tr, sx, sy]);
      const i = this.screenTracks.length;
      this.screen[2 * i] = sx;
      this.screen[2 * i + 1] = sy;
      this.screenTracks.push(tr);
      byParty[tr.t.party] = (byParty[tr.t.party] || 0) + 1;
    }

    const few = this.screenTracks.length <= 400;
    let trails = 0;
    let headings = 0;
    let drones = 0;
    // Dimmed groups first, so that what is highlighted is drawn on top.
    const ordered = [...groups.values()].sort((a, b) => Number(b.dim) - Number(a.dim));
    for (const { party, dim, list: g } of ordered) {
      const alpha = dim ? DIM_ALPHA : 1;
      const colour = this.styles.colour(party);
      const shape = this.styles.shape(party);
      // Trails.
      ctx.beginPath();
      for (const [tr, sx, sy] of g) {
        if (tr.trail.length < 2) continue;
        trails++;
        tr.trail.forEach(([x, y], i) => {
          const px = (x - this.cx) * this.scale + half.w;
          const py = (y - this.cy) * this.scale + half.h;
          if (i === 0) ctx.moveTo(px, py);
          else ctx.lineTo(px, py);
        });
        ctx.lineTo(sx, sy);
      }
      ctx.globalAlpha = 0.45 * alpha;
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1;
      ctx.stroke();
      ctx.globalAlpha = alpha;
      // Heading vectors: where the aircraft will be in a minute.
      ctx.beginPath();
      for (const [tr, sx, sy] of g) {
        let hx = tr.vx * HEADING_S * this.scale;
        let hy = tr.vy * HEADING_S * this.scale;
        const len = Math.hypot(hx, hy);
        if (len < 1e-6) continue;
        headings++;
        const k = Math.max(10, Math.min(80, len)) / len;
        hx *= k;
        hy *= k;
        ctx.moveTo(sx, sy);
        ctx.lineTo(sx + hx, sy + hy);
      }
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.stroke();
      // Marks, in small batches: Skia fills one path of thousands of
      // closed shapes far more slowly than many paths of a few dozen.
      ctx.fillStyle = colour;
      ctx.strokeStyle = '#0b1620';
      ctx.lineWidth = 1;
      for (let i = 0; i < g.length; i += MARK_BATCH) {
        ctx.beginPath();
        for (let j = i; j < Math.min(i + MARK_BATCH, g.length); j++) {
          const [tr, sx, sy] = g[j];
          const drone = isDrone(tr.t);
          if (drone) drones++;
          markPath(ctx, shape, sx, sy, drone ? DRONE_MARK_RADIUS : MARK_RADIUS, Math.atan2(tr.vx, -tr.vy));
        }
        ctx.fill();
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
    }
    // The selected alert's aircraft and the picked one: a white ring.
    const picked = this.picked && this.picked.kind === 'track' ? this.picked.key : '';
    ctx.beginPath();
    for (let i = 0; i < this.screenTracks.length; i++) {
      const tr = this.screenTracks[i];
      if (!(sel && sel.keys.has(tr.key)) && tr.key !== picked) continue;
      ctx.moveTo(this.screen[2 * i] + 11, this.screen[2 * i + 1]);
      ctx.arc(this.screen[2 * i], this.screen[2 * i + 1], 11, 0, Math.PI * 2);
    }
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 2;
    ctx.stroke();

    const conflictLabels = this.drawConflicts(ctx, nowMs, sel);

    if (this.focus && nowMs - this.focus.at < 4000) {
      const [sx, sy] = this.toScreen(projX(this.focus.lon), projY(this.focus.lat));
      ctx.beginPath();
      ctx.arc(sx, sy, 24 + ((nowMs - this.focus.at) / 100) % 12, 0, Math.PI * 2);
      ctx.strokeStyle = '#FFFFFF';
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    if (this.labelsOn) {
      const t0 = performance.now();
      this.drawLabels(ctx, conflictLabels, few, sel);
      this.labelCosts.push(performance.now() - t0);
      if (this.labelCosts.length > 600) this.labelCosts.splice(0, this.labelCosts.length - 600);
    }
    this.drawn.tracks = this.screenTracks.length;
    this.drawn.trails = trails;
    this.drawn.headings = headings;
    // Drones drawn with the smaller mark.
    this.drawn.drones = drones;
    this.drawn.byParty = byParty;
    this.drawn.dimmed = dimmed;
    this.drawn.lit = lit;
  }

  textWidth(ctx, font, text) {
    const k = `${font}|${text}`;
    let w = this.textWidths.get(k);
    if (w === undefined) {
      if (this.textWidths.size > 5000) this.textWidths.clear();
      ctx.font = font;
      w = ctx.measureText(visible(text, 200)).width;
      this.textWidths.set(k, w);
    }
    return w;
  }

  // drawLabels places and draws every label of the frame, most important
  // first, none over another or over an aircraft mark (labels.js):
  // predicted conflicts, the selected alert's aircraft, own callsigns,
  // others' callsigns, then volumes (full, then only the band).
  drawLabels(ctx, conflictLabels, few, sel) {
    const placer = this.labeler;
    placer.reset(this.width, this.height);
    if (few) {
      for (let i = 0; i < this.screenTracks.length; i++) placer.block(this.screen[2 * i] - 6, this.screen[2 * i + 1] - 6, this.screen[2 * i] + 6, this.screen[2 * i + 1] + 6);
    }
    const halo = (text, x, y, colour, font) => {
      ctx.font = font;
      ctx.lineJoin = 'round';
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#0b1620';
      const shown = visible(text, 200);
      ctx.strokeText(shown, x, y);
      ctx.fillStyle = colour;
      ctx.fillText(shown, x, y);
    };
    ctx.textBaseline = 'top';
    const conflictFont = 'bold 13px system-ui, sans-serif';
    for (const c of conflictLabels) {
      const at = placer.place(c.texts, [10, 30, 60].flatMap((gap) => aroundPoint(c.x, c.y, gap)), (t) => this.textWidth(ctx, conflictFont, t), 15, 3);
      if (!at) continue;
      ctx.fillStyle = 'rgba(11,22,32,0.85)';
      ctx.fillRect(at.x, at.y, at.w, at.h);
      ctx.font = conflictFont;
      ctx.fillStyle = c.colour;
      ctx.fillText(visible(at.text, 200), at.x + at.pad, at.y + at.pad);
    }
    if (few) {
      const trackFont = '11px system-ui, sans-serif';
      const order = [];
      for (let i = 0; i < this.screenTracks.length; i++) {
        const tr = this.screenTracks[i];
        const rank = sel && sel.keys.has(tr.key) ? 0 : sel ? 3 : tr.t.party === this.styles.own ? 1 : 2;
        order.push([rank, i]);
      }
      order.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (const [rank, i] of order) {
        const tr = this.screenTracks[i];
        const cls = classLabel(tr.t);
        const name = cls ? `${tr.t.callsign || tr.t.aircraft} · ${cls}` : tr.t.callsign || tr.t.aircraft;
        const at = placer.place([name], aroundPoint(this.screen[2 * i], this.screen[2 * i + 1], 8), (t) => this.textWidth(ctx, trackFont, t), 12, 1);
        if (!at) continue;
        ctx.globalAlpha = rank === 3 ? DIM_ALPHA * 2 : 1;
        halo(at.text, at.x + at.pad, at.y + at.pad, this.styles.colour(tr.t.party), trackFont);
        ctx.globalAlpha = 1;
      }
    }
    const volumeFont = '12px system-ui, sans-serif';
    const vols = this.visibleVolumes();
    // The selected alert's volumes first, then own, then others'.
    const rank = (vol) => (sel && sel.volumes.has(vol.v.id) ? 0 : vol.v.party === this.styles.own ? 1 : 2);
    vols.sort((a, b) => rank(a) - rank(b));
    for (const vol of vols) {
      if (!vol.rings.length || !vol.rings[0].length) continue;
      if (sel && !sel.volumes.has(vol.v.id)) continue;
      const v = vol.v;
      const band = `FL${fl(v.alt_lower_m)}–${fl(v.alt_upper_m)}`;
      const texts = [`${v.party} FL${fl(v.alt_lower_m)}–FL${fl(v.alt_upper_m)}`, band];
      const ring = vol.rings[0].map(([x, y]) => this.toScreen(x, y));
      const at = placer.place(texts, aroundRing(ring, this.width, this.height), (t) => this.textWidth(ctx, volumeFont, t), 13, 1, 8);
      if (at) halo(at.text, at.x + at.pad, at.y + at.pad, this.styles.colour(v.party), volumeFont);
    }
    ctx.textBaseline = 'alphabetic';
    this.drawn.labels = placer.placed;
  }

  // A predicted conflict: each aircraft's path from now to closest approach,
  // in the colour and line pattern of the alert level. Returns the labels
  // to place (the level and the countdown to loss of separation), most
  // severe first; with an alert selected, the others are dimmed.
  drawConflicts(ctx, nowMs, sel) {
    let count = 0;
    const labels = [];
    for (const a of this.alerts) {
      if (a.kind !== 'conflict' || a.state === 'cleared' || !Array.isArray(a.aircraft)) continue;
      if (!a.aircraft.every((ac) => this.alertedShown(ac))) continue;
      const lv = level(a.level);
      const lit = !sel || String(a.id) === this.selectedAlertId;
      const alertMs = Date.parse(a.time);
      const elapsed = Number.isFinite(alertMs) ? (nowMs - alertMs) / 1000 : 0;
      const cpaIn = (a.t_cpa_s || 0) - elapsed;
      const losIn = (a.t_in_s || 0) - elapsed;
      const ends = [];
      ctx.globalAlpha = lit ? 1 : DIM_ALPHA;
      ctx.setLineDash(lv.dash);
      ctx.strokeStyle = lv.colour;
      ctx.lineWidth = lv.width;
      for (const ac of a.aircraft) {
        const live = this.tracks.get(`${ac.party}/${ac.aircraft}`);
        let x;
        let y;
        let vx;
        let vy;
        if (live) {
          const dt = Math.max(0, Math.min(30, (nowMs - live.timeMs) / 1000));
          x = live.x + live.vx * dt;
          y = live.y + live.vy * dt;
          vx = live.vx;
          vy = live.vy;
        } else {
          [vx, vy] = worldVelocity(ac.lat, ac.vel_east_mps || 0, ac.vel_north_mps || 0);
          x = projX(ac.lon) + vx * Math.max(0, elapsed);
          y = projY(ac.lat) + vy * Math.max(0, elapsed);
        }
        const ahead = Math.max(0, cpaIn);
        const [sx, sy] = this.toScreen(x, y);
        const [ex, ey] = this.toScreen(x + vx * ahead, y + vy * ahead);
        ctx.beginPath();
        ctx.moveTo(sx, sy);
        ctx.lineTo(ex, ey);
        ctx.stroke();
        ends.push([ex, ey]);
      }
      ctx.setLineDash([]);
      ctx.beginPath();
      for (const [ex, ey] of ends) markPath(ctx, lv.mark, ex, ey, 6);
      ctx.fillStyle = lv.colour;
      ctx.fill();
      ctx.globalAlpha = 1;
      if (ends.length && lit) {
        const mx = ends.reduce((s, e) => s + e[0], 0) / ends.length;
        const my = ends.reduce((s, e) => s + e[1], 0) / ends.length;
        const when = `LoS ${losIn > 0 ? `in ${formatDuration(losIn)}` : 'now'}`;
        labels.push({ x: mx, y: my, colour: lv.colour, rank: lv.rank, texts: [`${lv.label} · ${when}`, when] });
      }
      count++;
    }
    this.drawn.conflicts = count;
    return labels.sort((a, b) => b.rank - a.rank);
  }

  // alertedShown tells whether the filters show an alert's aircraft.
  alertedShown(ac) {
    return ac.party === this.styles.own ? this.filter.own : this.filter.others;
  }
}

function fl(altM) {
  return String(Math.round(altM / 0.3048 / 100)).padStart(3, '0');
}

function pointInRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
