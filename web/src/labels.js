// Map labels that never overlap: every label of a frame asks for a place,
// most important first (predicted conflicts, the selected alert's aircraft,
// callsigns, then volumes), each with a few candidate positions and
// shorter forms of its text; the first candidate that overlaps neither a
// label already placed nor an aircraft mark wins, and a label with no free
// candidate is left out (hovering or selecting still tells everything).
// The boxes placed are kept for the browser tests, which check that they
// do not overlap.

const CELL_PX = 48;

// LabelPlacer keeps the boxes taken in a frame in a grid of cells, so that
// hundreds of labels cost little.
export class LabelPlacer {
  constructor() {
    this.reset(1, 1);
  }

  reset(width, height) {
    this.width = width;
    this.height = height;
    this.cols = Math.max(1, Math.ceil(width / CELL_PX));
    this.rows = Math.max(1, Math.ceil(height / CELL_PX));
    this.cells = new Map();
    this.boxes = []; // [x0, y0, x1, y1] of everything taken
    this.placed = []; // the labels drawn: {x0, y0, x1, y1, text}
  }

  cellRange(b) {
    const c0 = Math.max(0, Math.floor(b[0] / CELL_PX));
    const c1 = Math.min(this.cols - 1, Math.floor(b[2] / CELL_PX));
    const r0 = Math.max(0, Math.floor(b[1] / CELL_PX));
    const r1 = Math.min(this.rows - 1, Math.floor(b[3] / CELL_PX));
    return [c0, c1, r0, r1];
  }

  // free tells whether box b is inside the view (unless anywhere) and
  // overlaps nothing taken.
  free(b, anywhere = false) {
    if (!anywhere && (b[0] < 0 || b[1] < 0 || b[2] > this.width || b[3] > this.height)) return false;
    const [c0, c1, r0, r1] = this.cellRange(b);
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const list = this.cells.get(r * this.cols + c);
        if (!list) continue;
        for (const i of list) {
          const o = this.boxes[i];
          if (b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3]) return false;
        }
      }
    }
    return true;
  }

  take(b) {
    const i = this.boxes.length;
    this.boxes.push(b);
    const [c0, c1, r0, r1] = this.cellRange(b);
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const k = r * this.cols + c;
        let list = this.cells.get(k);
        if (!list) {
          list = [];
          this.cells.set(k, list);
        }
        list.push(i);
      }
    }
  }

  // block takes a box that labels must not cover (an aircraft mark). Out
  // of the view it is ignored.
  block(x0, y0, x1, y1) {
    if (x1 < 0 || y1 < 0 || x0 > this.width || y0 > this.height) return;
    this.take([x0, y0, x1, y1]);
  }

  // place finds a place for a label: texts are its forms, longest first;
  // anchors the points it may hang from, each with where the text goes
  // (dx, dy: the box's offset from the anchor in units of its width and
  // height, e.g. [0, -1] above and to the right). Returns {x, y, text, w, h}
  // (x, y: the box's top left) or null when every place is taken.
  // marginPx keeps other labels that far away (it is taken with the box),
  // so that a crowd of labels thins out rather than packs tight.
  place(texts, anchors, measure, heightPx, padPx = 2, marginPx = 0) {
    for (const text of texts) {
      const w = measure(text) + 2 * padPx;
      const h = heightPx + 2 * padPx;
      for (const [ax, ay, dx, dy] of anchors) {
        const x = ax + dx * w;
        const y = ay + dy * h;
        const b = [x, y, x + w, y + h];
        const room = [x - marginPx, y - marginPx, x + w + marginPx, y + h + marginPx];
        if (this.free(b) && (marginPx === 0 || this.free(room, true))) {
          this.take(marginPx ? room : b);
          this.placed.push({ x0: b[0], y0: b[1], x1: b[2], y1: b[3], text });
          return { x, y, text, w, h, pad: padPx };
        }
      }
    }
    return null;
  }
}

// aroundPoint are the places of a label beside a point (an aircraft):
// right below, right above, left below, left above, offset by gap.
export function aroundPoint(sx, sy, gap) {
  return [
    [sx + gap, sy + 1, 0, 0],
    [sx + gap, sy - 1, 0, -1],
    [sx - gap, sy + 1, -1, 0],
    [sx - gap, sy - 1, -1, -1],
  ];
}

// aroundRing are the places of a volume's label, ring in screen pixels,
// width and height those of the view: centred above its top and below its
// bottom, just inside them (where the volume runs off the view), at its
// centre, beside it. The part of the volume inside the view counts.
export function aroundRing(ring, width, height) {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of ring) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  const x0 = Math.max(minX, 0);
  const x1 = Math.min(maxX, width);
  const y0 = Math.max(minY, 0);
  const y1 = Math.min(maxY, height);
  if (x0 >= x1 || y0 >= y1) return [];
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  return [
    [cx, minY - 2, -0.5, -1],
    [cx, maxY + 2, -0.5, 0],
    [cx, y0 + 4, -0.5, 0],
    [cx, y1 - 4, -0.5, -1],
    [cx, cy, -0.5, -0.5],
    [maxX + 4, cy, 0, -0.5],
    [minX - 4, cy, -1, -0.5],
  ];
}
