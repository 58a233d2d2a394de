// Deadlines to acknowledge, counted down for people: the running deadline
// of a hotline item (its acknowledgment deadline while open, the next
// escalation once escalated), the time left, and whether it is in its last
// third, when it turns red. Spans carrying data-deadline-at are counted
// down in place once a second by tickDeadlines.

import { formatDuration } from './geo.js';

// runningDeadline is the deadline item m is running against, with the
// length of its whole period, or null once everyone acknowledged it.
// rules (optional) gives the escalation period of an escalated item.
export function runningDeadline(m, rules) {
  if (!m || m.state === 'acknowledged') return null;
  const created = Date.parse(m.created);
  const deadline = Date.parse(m.deadline);
  if (m.state === 'escalated') {
    const at = Date.parse(m.escalation_deadline);
    if (!Number.isFinite(at)) return null;
    const periodS = rules && rules.escalation_deadline_s;
    const periodMs = periodS > 0 ? periodS * 1000 : at - deadline;
    return { atMs: at, periodMs: Math.max(1, periodMs), escalation: true };
  }
  if (!Number.isFinite(deadline)) return null;
  return { atMs: deadline, periodMs: Math.max(1, deadline - created), escalation: false };
}

// countdown says how long is left to a deadline at nowMs: the text, and
// whether it is urgent (in the last third of its period, or past).
export function countdown(d, nowMs) {
  const leftMs = d.atMs - nowMs;
  const urgent = leftMs <= d.periodMs / 3;
  const what = d.escalation ? 'next escalation' : 'deadline';
  const text = leftMs > 0 ? `${what} in ${formatDuration(leftMs / 1000)}` : `${what} overdue`;
  return { text, urgent, leftMs };
}

// deadlineAttrs are the attributes of a span counting down to d, kept
// current by tickDeadlines; null without a deadline.
export function deadlineAttrs(d) {
  if (!d) return null;
  return { class: 'deadline', 'data-deadline-at': String(d.atMs), 'data-deadline-period': String(d.periodMs), 'data-deadline-escalation': d.escalation ? '1' : '' };
}

// renderDeadline writes the countdown of the span at nowMs; red in the
// last third of the period, with a word that says so for those who do not
// see the colour.
export function renderDeadline(span, nowMs) {
  const d = { atMs: Number(span.dataset.deadlineAt), periodMs: Number(span.dataset.deadlinePeriod), escalation: span.dataset.deadlineEscalation === '1' };
  const c = countdown(d, nowMs);
  const text = c.urgent ? `${c.text} (urgent)` : c.text;
  if (span.textContent !== text) span.textContent = text;
  span.classList.toggle('urgent', c.urgent);
}

export function tickDeadlines(root, nowMs) {
  for (const span of root.querySelectorAll('[data-deadline-at]')) renderDeadline(span, nowMs);
}
