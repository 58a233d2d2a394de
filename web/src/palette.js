// Colours and marks. Okabe-Ito colours, and every distinction that matters
// also has a shape, a line pattern or a label, so nothing relies on red
// against green or on colour alone.

// Own party first, then other parties in the order they were first seen.
export const PARTY_COLOURS = ['#56B4E9', '#CC79A7', '#009E73', '#0072B2', '#FFFFFF'];
export const PARTY_SHAPES = ['triangle', 'diamond', 'square', 'circle', 'cross'];

// DO-365's preventive and corrective levels (between a drone and a manned
// aircraft) look like advisory and caution, their rank between manned
// aircraft; warning is the most severe of both.
export const LEVELS = {
  advisory: { rank: 1, colour: '#F0E442', dash: [2, 5], width: 2, label: 'ADVISORY', mark: 'circle' },
  preventive: { rank: 1, colour: '#F0E442', dash: [2, 5], width: 2, label: 'PREVENTIVE', mark: 'circle' },
  caution: { rank: 2, colour: '#E69F00', dash: [9, 5], width: 3, label: 'CAUTION', mark: 'triangle' },
  corrective: { rank: 2, colour: '#E69F00', dash: [9, 5], width: 3, label: 'CORRECTIVE', mark: 'triangle' },
  warning: { rank: 3, colour: '#D55E00', dash: [], width: 4, label: 'WARNING', mark: 'octagon' },
};

// Marks of drones are drawn smaller than those of manned aircraft.
export const MARK_RADIUS = 5;
export const DRONE_MARK_RADIUS = 3;

// isDrone tells a track (or an alert's aircraft) of class uas.
export function isDrone(t) {
  return t.class === 'uas';
}

// classLabel is how a class reads in labels: nothing for manned (the
// default), the class otherwise.
export function classLabel(t) {
  return t.class && t.class !== 'manned' ? t.class.toUpperCase() : '';
}

// level is the style of an alert level; one it does not know (a level of
// newer rules, or a name such as "constructor" that an object inherits)
// is drawn as advisory.
export function level(name) {
  return Object.hasOwn(LEVELS, name) ? LEVELS[name] : LEVELS.advisory;
}

export class PartyStyles {
  constructor() {
    this.order = [];
    this.own = '';
  }

  setOwn(party) {
    this.own = party;
    this.order = [party, ...this.order.filter((p) => p !== party)];
  }

  // Returns whether the party was new, so that the legend can be redrawn.
  see(party) {
    if (!party || this.order.includes(party)) return false;
    this.order.push(party);
    return true;
  }

  index(party) {
    const i = this.order.indexOf(party);
    return i < 0 ? this.order.length : i;
  }

  colour(party) {
    return PARTY_COLOURS[this.index(party) % PARTY_COLOURS.length];
  }

  shape(party) {
    return PARTY_SHAPES[this.index(party) % PARTY_SHAPES.length];
  }
}

// Adds a closed mark of the given shape to the current path of ctx.
export function markPath(ctx, shape, x, y, r, angle = 0) {
  switch (shape) {
    case 'triangle': {
      // Points along the heading.
      const s = Math.sin(angle);
      const c = Math.cos(angle);
      const pts = [[0, -r * 1.3], [r, r], [-r, r]];
      pts.forEach(([px, py], i) => {
        const qx = x + px * c - py * s;
        const qy = y + px * s + py * c;
        if (i === 0) ctx.moveTo(qx, qy);
        else ctx.lineTo(qx, qy);
      });
      ctx.closePath();
      break;
    }
    case 'diamond':
      ctx.moveTo(x, y - r * 1.2);
      ctx.lineTo(x + r * 1.2, y);
      ctx.lineTo(x, y + r * 1.2);
      ctx.lineTo(x - r * 1.2, y);
      ctx.closePath();
      break;
    case 'square':
      ctx.rect(x - r, y - r, 2 * r, 2 * r);
      break;
    case 'octagon':
      for (let i = 0; i < 8; i++) {
        const a = Math.PI / 8 + (i * Math.PI) / 4;
        const qx = x + r * 1.2 * Math.cos(a);
        const qy = y + r * 1.2 * Math.sin(a);
        if (i === 0) ctx.moveTo(qx, qy);
        else ctx.lineTo(qx, qy);
      }
      ctx.closePath();
      break;
    case 'cross':
      ctx.rect(x - r, y - r / 3, 2 * r, (2 * r) / 3);
      ctx.rect(x - r / 3, y - r, (2 * r) / 3, 2 * r);
      break;
    default:
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, Math.PI * 2);
      break;
  }
}
