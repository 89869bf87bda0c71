#!/usr/bin/env node
'use strict';
// After a load run: every order the API accepted (recorded by processor.js in LOAD_OUT) must be
// in a terminal state (CONFIRMED or CANCELLED, the one its card token asks for), and every
// terminal order must have exactly one notification about it (GET /v1/notifications of its
// customer). Waits up to LOAD_SETTLE_S for the saga and notify to catch up, then reports each
// difference; exits 1 if there is any.
//
//   node load-tests/check.js [orders.jsonl]      env: BASE_URL, TOKEN (stage), LOAD_OUT, LOAD_SETTLE_S
const fs = require('node:fs');
const path = require('node:path');
const auth = require('./lib/auth');
const sagaLatency = require('./lib/saga-latency');

const BASE = (process.env.BASE_URL || 'http://127.0.0.1:3000').replace(/\/$/, '');
const FILE = process.argv[2] || process.env.LOAD_OUT || path.resolve(__dirname, '..', '.local', 'load-tests', 'orders.jsonl');
const SETTLE_S = Number(process.env.LOAD_SETTLE_S ?? 150);
const PARALLEL = Number(process.env.LOAD_CHECK_PARALLEL ?? 8);
const TERMINAL = new Set(['CONFIRMED', 'CANCELLED']);
const ABOUT = { CONFIRMED: 'OrderConfirmed', CANCELLED: 'OrderCancelled' };
const shared = Boolean(auth.sharedToken());

const tokens = new Map();
const tokenFor = (sub) => tokens.get(sub) || tokens.set(sub, auth.tokenFor(sub)).get(sub);

async function api(sub, p) {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${BASE}${p}`, { headers: { authorization: `Bearer ${tokenFor(sub)}` }, signal: AbortSignal.timeout(10000) });
      const text = await res.text();
      let body = null;
      try { body = JSON.parse(text); } catch { body = text; }
      return { status: res.status, body, corr: res.headers.get('x-correlation-id') };
    } catch (err) {
      if (attempt >= 3) return { status: 0, body: String(err), corr: null };
    }
  }
}

async function pool(items, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

/** Every page of a list endpoint; stops at items older than `since` (lists are newest first). */
async function listAll(sub, route, since, stampField) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < 50; page++) {
    const q = `limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await api(sub, `${route}?${q}`);
    if (r.status !== 200) return { error: `GET ${route} -> ${r.status} ${JSON.stringify(r.body).slice(0, 200)} corr=${r.corr}` };
    let old = false;
    for (const it of r.body.items) {
      if (since && it[stampField] && Date.parse(it[stampField]) < since) { old = true; continue; }
      items.push(it);
    }
    cursor = r.body.next_cursor;
    if (!cursor || old) break;
  }
  return { items };
}

function load() {
  if (!fs.existsSync(FILE)) {
    console.error(`check: ${FILE} does not exist (no order was recorded)`);
    process.exit(1);
  }
  const recs = fs.readFileSync(FILE, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const placed = new Map();
  for (const r of recs.filter((r) => r.type === 'placed')) if (!placed.has(r.id)) placed.set(r.id, r);
  return {
    placed,
    postFailed: recs.filter((r) => r.type === 'post_failed'),
    replayMismatch: recs.filter((r) => r.type === 'replay_mismatch'),
    since: recs.length ? Math.min(...recs.map((r) => Date.parse(r.at))) - 60000 : Date.now(),
  };
}

async function snapshot(placed, since) {
  const orders = [...placed.values()];
  const states = await pool(orders, async (o) => ({ o, r: await api(o.sub, `/v1/orders/${o.id}`) }));
  const subs = [...new Set(orders.map((o) => o.sub))];
  // In shared-token (stage) mode only what this run could have produced is looked at.
  const cut = shared ? since : null;
  const notes = new Map();
  const listed = new Map();
  await pool(subs, async (sub) => {
    notes.set(sub, await listAll(sub, '/v1/notifications', cut, 'sent_at'));
    listed.set(sub, await listAll(sub, '/v1/orders', cut, 'created_at'));
  });
  const rep = { placed: orders.length, confirmed: [], cancelled: [], pending: [], getFailed: [], unexpected: [], notified: 0, missingNote: [], dupNote: [], wrongNote: [], unknownNote: [], unrecorded: [], listErrors: [] };
  const byOrder = new Map();
  for (const [sub, n] of notes) {
    if (n.error) { rep.listErrors.push(`${sub}: ${n.error}`); continue; }
    for (const it of n.items) {
      if (!byOrder.has(it.order_id)) byOrder.set(it.order_id, []);
      byOrder.get(it.order_id).push(it);
      if (!placed.has(it.order_id) && !shared) rep.unknownNote.push(`${sub}: notification ${it.id} about ${it.about} of unknown order ${it.order_id}`);
    }
  }
  for (const [sub, l] of listed) {
    if (l.error) { rep.listErrors.push(`${sub}: ${l.error}`); continue; }
    for (const it of l.items) if (!placed.has(it.id)) rep.unrecorded.push(`${sub}: order ${it.id} (${it.status}, created ${it.created_at}) was not recorded as placed`);
  }
  for (const { o, r } of states) {
    if (r.status !== 200) { rep.getFailed.push(`${o.id} (${o.sub}): GET -> ${r.status} ${JSON.stringify(r.body).slice(0, 200)} corr=${r.corr}`); continue; }
    const st = r.body.status;
    if (!TERMINAL.has(st)) { rep.pending.push(`${o.id} (${o.sub}, ${o.card_token}): ${st} since ${o.at}, placed corr=${o.correlation_id}`); continue; }
    rep[st.toLowerCase()].push(o.id);
    if (st !== o.expected) rep.unexpected.push(`${o.id}: ${st}, want ${o.expected} for ${o.card_token}`);
    const mine = (byOrder.get(o.id) || []).filter((n) => n.about === ABOUT[st]);
    const others = (byOrder.get(o.id) || []).filter((n) => n.about !== ABOUT[st]);
    if (mine.length === 0) rep.missingNote.push(`${o.id} (${o.sub}): ${st} but no ${ABOUT[st]} notification`);
    else rep.notified++;
    if (mine.length > 1) rep.dupNote.push(`${o.id}: ${mine.length} ${ABOUT[st]} notifications (${mine.map((n) => n.id).join(', ')})`);
    if (others.length) rep.wrongNote.push(`${o.id}: ${st} but notified ${others.map((n) => n.about).join(', ')}`);
  }
  return rep;
}

const problems = (rep) =>
  rep.pending.length + rep.getFailed.length + rep.unexpected.length + rep.missingNote.length +
  rep.dupNote.length + rep.wrongNote.length + rep.unknownNote.length + rep.unrecorded.length + rep.listErrors.length;

async function main() {
  const { placed, postFailed, replayMismatch, since } = load();
  console.log(`check: ${placed.size} orders recorded in ${FILE}; checking ${BASE} (${shared ? 'shared TOKEN' : 'local tokens, one sub per order'})`);
  const deadline = Date.now() + SETTLE_S * 1000;
  let rep;
  for (;;) {
    rep = await snapshot(placed, since);
    if (problems(rep) === 0 || Date.now() >= deadline) break;
    console.log(`check: ${rep.pending.length} pending, ${rep.missingNote.length} without notification; retrying (settle ${Math.round((deadline - Date.now()) / 1000)} s left)`);
    await new Promise((r) => setTimeout(r, 3000));
  }
  const terminal = rep.confirmed.length + rep.cancelled.length;
  const rows = [
    ['orders placed (201, recorded)', rep.placed],
    ['orders in a terminal state', `${terminal} (CONFIRMED ${rep.confirmed.length}, CANCELLED ${rep.cancelled.length})`],
    ['orders still PENDING', rep.pending.length],
    ['orders not readable (GET != 200)', rep.getFailed.length],
    ['terminal orders with their notification', rep.notified],
    ['terminal orders without notification', rep.missingNote.length],
    ['duplicate notifications', rep.dupNote.length],
    ['notifications of the wrong kind', rep.wrongNote.length],
    ['notifications of unknown orders', rep.unknownNote.length],
    ['orders listed but not recorded', rep.unrecorded.length],
    ['outcome not the card token\'s', rep.unexpected.length],
    ['list errors', rep.listErrors.length],
    ['POSTs that failed during the run', postFailed.length],
    ['idempotent replays that did not match', replayMismatch.length],
  ];
  console.log('\ncheck: results');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(42)} ${v}`);
  // Saga latency of every placed order, from the local stack's timeline (null elsewhere).
  const latencies = await sagaLatency.sagaLatencies(BASE, [...placed.keys()], PARALLEL);
  if (latencies) {
    console.log('\ncheck: saga latency (local stack timeline)');
    for (const l of sagaLatency.report(latencies)) console.log(`  ${l}`);
  }
  const detail = (title, list) => {
    if (!list.length) return;
    console.log(`\n  ${title}:`);
    for (const l of list.slice(0, 20)) console.log(`    ${typeof l === 'string' ? l : JSON.stringify(l)}`);
    if (list.length > 20) console.log(`    … ${list.length - 20} more`);
  };
  detail('still PENDING', rep.pending);
  detail('GET failed', rep.getFailed);
  detail('unexpected outcome', rep.unexpected);
  detail('missing notification', rep.missingNote);
  detail('duplicate notification', rep.dupNote);
  detail('wrong notification', rep.wrongNote);
  detail('notification of an unknown order', rep.unknownNote);
  detail('order not recorded as placed', rep.unrecorded);
  detail('list errors', rep.listErrors);
  detail('failed POSTs', postFailed);
  detail('replay mismatches', replayMismatch);
  // A POST answered 5xx created no order (checked above: no listed order is unrecorded); the
  // client would retry it. It is reported, and counted by Artillery's error rate, not here.
  if (postFailed.length) console.log(`\n  note: ${postFailed.length} POST /v1/orders failed during the run (see above); not a lost order`);
  const n = problems(rep) + replayMismatch.length + (rep.placed === 0 ? 1 : 0);
  if (rep.placed === 0) console.log('\n  no order was placed');
  if (n) {
    console.log(`\ncheck: FAIL (${n} problem${n === 1 ? '' : 's'})`);
    process.exit(1);
  }
  console.log(`\ncheck: OK: ${rep.placed} placed = ${terminal} terminal = ${rep.notified} notified`);
}

main().catch((err) => {
  console.error(`check: error: ${err.stack || err}`);
  process.exit(2);
});
