#!/usr/bin/env node
'use strict';
// Saga latency of sequential orders on the local stack (`make latency`): places LATENCY_ORDERS
// orders (default 30), one every 1/LATENCY_RATE s (default 1 order/s), each by its own customer,
// with the approving card; waits until each is notified (or LATENCY_SETTLE_S, default 60, pass)
// and prints POST → terminal state and POST → notification, p50/p95/p99, from the saga timeline.
//   node load-tests/latency.js            (BASE_URL, default http://127.0.0.1:3000)
const fs = require('node:fs');
const auth = require('./lib/auth');
const { sagaLatencies, report } = require('./lib/saga-latency');

const BASE = (process.env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/$/, '');
const N = Number(process.env.LATENCY_ORDERS ?? 30);
const RATE = Number(process.env.LATENCY_RATE ?? 1);
const SETTLE_S = Number(process.env.LATENCY_SETTLE_S ?? 60);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function place(n) {
  const run = process.env.LOAD_RUN_ID || Date.now();
  const res = await fetch(`${BASE}/v1/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${auth.tokenFor(`latency-${run}-${n}`)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ lines: [{ sku: 'SKU-1', quantity: 1, unit_price: { amount: 500, currency: 'EUR' } }], card_token: 'tok_approve' }),
    signal: AbortSignal.timeout(10000),
  });
  if (res.status !== 201) throw new Error(`POST /v1/orders -> ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

async function main() {
  console.log(`latency: ${N} orders at ${RATE} order/s against ${BASE}`);
  const ids = [];
  const start = Date.now();
  for (let n = 0; n < N; n++) {
    await sleep(Math.max(0, start + (n * 1000) / RATE - Date.now()));
    ids.push(await place(n));
  }
  const deadline = Date.now() + SETTLE_S * 1000;
  let lat;
  for (;;) {
    lat = await sagaLatencies(BASE, ids);
    if (lat === null) { console.error(`latency: ${BASE} has no saga timeline (/_local/api/orders/<id>): only the local stack has one`); process.exit(2); }
    const open = [...lat.values()].filter((l) => l.notified_ms === null).length + (ids.length - lat.size);
    if (open === 0 || Date.now() >= deadline) break;
    await sleep(1000);
  }
  const lines = report(lat);
  console.log(lines.join('\n'));
  if (process.env.LOAD_OUT) fs.writeFileSync(`${process.env.LOAD_OUT}.latency.json`, JSON.stringify(Object.fromEntries(lat), null, 1));
  if ([...lat.values()].some((l) => l.notified_ms === null) || lat.size < ids.length) process.exit(1);
}

main().catch((e) => { console.error(`latency: ${e.stack || e}`); process.exit(1); });
