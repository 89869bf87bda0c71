#!/usr/bin/env node
'use strict';
// One-screen summary of an Artillery JSON report (artillery run --output report.json):
// arrival and request rates, latencies (overall and per endpoint), saga time, counts.
//   node load-tests/summarize.js report.json
const r = require(require('node:path').resolve(process.argv[2])).aggregate;
const c = r.counters;
const s = r.summaries;
const secs = (r.lastMetricAt - r.firstMetricAt) / 1000;
const lat = (m) => (m ? `p50 ${m.p50} / p95 ${m.p95} / p99 ${m.p99} / max ${m.max} ms (n=${m.count})` : 'n/a');
const n = (k) => c[k] || 0;
const out = [
  `duration            ${secs.toFixed(1)} s (first to last metric)`,
  `virtual users       created ${n('vusers.created')}, completed ${n('vusers.completed')}, failed ${n('vusers.failed')}`,
  `orders              placed ${n('orders.placed_approve') + n('orders.placed_decline')} (approve ${n('orders.placed_approve')}, decline ${n('orders.placed_decline')}), CONFIRMED ${n('orders.confirmed')}, CANCELLED ${n('orders.cancelled')}, stuck ${n('orders.stuck')}, replays ok ${n('orders.replayed_ok')}`,
  `requests            ${n('http.requests')} (${(n('http.requests') / secs).toFixed(1)} req/s sustained), responses ${n('http.responses')}, 2xx ${Object.entries(c).filter(([k]) => /^http\.codes\.2/.test(k)).reduce((a, [, v]) => a + v, 0)}`,
  `non-2xx / errors    ${Object.entries(c).filter(([k]) => /^http\.codes\.[^2]/.test(k) || k.startsWith('errors.')).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}`,
  `http latency        ${lat(s['http.response_time'])}`,
];
for (const [k, m] of Object.entries(s)) {
  const p = 'plugins.metrics-by-endpoint.response_time.';
  if (k.startsWith(p)) out.push(`  ${k.slice(p.length).padEnd(28)}  ${lat(m)}`);
}
out.push(`order time to terminal ${lat(s['orders.time_to_terminal'])}`);
out.push(`polls per order     ${lat(s['orders.polls']).replace(/ ms/, '')}`);
console.log(out.join('\n'));
