'use strict';
// Saga latency from the local stack's timeline (`/_local/api/orders/<id>`, one hop per
// invocation with its start and duration): POST /v1/orders → the orders-events invocation that
// made the order terminal (the payment's answer) and → the notify-events invocation that sent its
// notification. Only the local stack has the timeline; against a deployed stage it answers null.

const TERMINAL_EVENTS = /^Payment/;
const NOTICE_EVENTS = new Set(['OrderConfirmed', 'OrderCancelled']);

const ends = (h) => Date.parse(h.started_at) + h.duration_ms;

/** { terminal_ms, notified_ms } of one order's saga (null where that hop has not happened). */
function ofSaga(saga) {
  const hops = [...saga.hops].sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  const post = hops.find((h) => h.kind === 'http' && /^POST \/v1\/orders\b/.test(h.detail || ''));
  if (!post) return { terminal_ms: null, notified_ms: null };
  const t0 = Date.parse(post.started_at);
  const ok = (h) => h.ending === 'ok' && h.kind === 'consumer';
  const terminal = hops.find((h) => ok(h) && h.service === 'orders' && h.event_types.some((e) => TERMINAL_EVENTS.test(e)));
  const notified = hops.find((h) => ok(h) && h.service === 'notify' && h.event_types.some((e) => NOTICE_EVENTS.has(e)));
  return {
    terminal_ms: terminal ? Math.round(ends(terminal) - t0) : null,
    notified_ms: notified ? Math.round(ends(notified) - t0) : null,
  };
}

/** The saga latency of each order id, read from `base`'s timeline; null when it has none. */
async function sagaLatencies(base, ids, parallel = 8) {
  const out = new Map();
  let next = 0;
  let missing = false;
  await Promise.all(Array.from({ length: Math.min(parallel, ids.length) }, async () => {
    while (next < ids.length && !missing) {
      const id = ids[next++];
      try {
        const res = await fetch(`${base}/_local/api/orders/${encodeURIComponent(id)}`, { signal: AbortSignal.timeout(10000) });
        if (res.status === 404 && out.size === 0) { missing = true; return; }
        if (res.ok) out.set(id, ofSaga((await res.json()).saga));
      } catch {
        // an unreadable timeline counts as an order without latency
      }
    }
  }));
  return missing ? null : out;
}

/** The p-th percentile (nearest rank) of numbers; null for none. */
function pct(values, p) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Lines of a report: p50/p95/p99/max of both spans, and how many orders lack one. */
function report(latencies) {
  const rows = [];
  for (const [label, key] of [['POST → terminal state', 'terminal_ms'], ['POST → notification', 'notified_ms']]) {
    const v = [...latencies.values()].map((l) => l[key]).filter((x) => x !== null);
    const none = latencies.size - v.length;
    rows.push(`${label.padEnd(24)} p50 ${pct(v, 50)} / p95 ${pct(v, 95)} / p99 ${pct(v, 99)} / max ${pct(v, 100)} ms (n=${v.length}${none ? `, ${none} without` : ''})`);
  }
  return rows;
}

module.exports = { ofSaga, sagaLatencies, pct, report };
