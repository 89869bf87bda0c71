'use strict';
// Artillery processor for orders.yml: one customer (`sub`) per virtual user, an order with an
// approve or decline card token and an Idempotency-Key, the read-back and the bounded polling
// until the saga has decided. Every order the API accepted is appended to LOAD_OUT (JSON lines)
// for check.js.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const auth = require('./lib/auth');

const OUT = process.env.LOAD_OUT || path.resolve(__dirname, '..', '.local', 'load-tests', 'orders.jsonl');
const RUN_ID = process.env.LOAD_RUN_ID || `r${Date.now().toString(36)}`;
const DECLINE_PCT = Number(process.env.LOAD_DECLINE_PCT ?? 30);
const REPLAY_PCT = Number(process.env.LOAD_REPLAY_PCT ?? 20);
const MAX_POLLS = Number(process.env.LOAD_MAX_POLLS ?? 30);
const TERMINAL = new Set(['CONFIRMED', 'CANCELLED']);
const DECLINES = ['insufficient_funds', 'card_expired', 'do_not_honor'];

fs.mkdirSync(path.dirname(OUT), { recursive: true });
const record = (obj) => fs.appendFileSync(OUT, `${JSON.stringify({ ...obj, at: new Date().toISOString() })}\n`);

function parse(body) {
  if (typeof body !== 'string') return body || {};
  try {
    return JSON.parse(body);
  } catch {
    return {};
  }
}

/** beforeScenario: the customer, its token, the order body, the idempotency key. */
function setupUser(context, events, done) {
  const shared = auth.sharedToken();
  const sub = shared ? auth.subOf(shared) : `load-${RUN_ID}-${crypto.randomUUID()}`;
  const decline = Math.random() * 100 < DECLINE_PCT;
  const cardToken = decline ? `tok_decline_${DECLINES[Math.floor(Math.random() * DECLINES.length)]}` : 'tok_approve';
  const nLines = 1 + Math.floor(Math.random() * 3);
  const lines = Array.from({ length: nLines }, (_, i) => ({
    sku: `LOAD-${i + 1}`,
    quantity: 1 + Math.floor(Math.random() * 5),
    unit_price: { amount: 100 * (1 + Math.floor(Math.random() * 50)), currency: 'EUR' },
  }));
  Object.assign(context.vars, {
    sub,
    token: auth.tokenFor(sub),
    idemKey: `load-${RUN_ID}-${crypto.randomUUID()}`,
    cardToken,
    expected: decline ? 'CANCELLED' : 'CONFIRMED',
    orderBody: { lines, card_token: cardToken },
    replay: Math.random() * 100 < REPLAY_PCT,
    polls: 0,
    status: null,
  });
  return done();
}

/** afterResponse of POST /v1/orders: 201 with a PENDING order, recorded for the checker. */
function checkPlaced(req, res, context, events, next) {
  const v = context.vars;
  const body = parse(res.body);
  if (res.statusCode !== 201 || !body.id) {
    record({ type: 'post_failed', sub: v.sub, idempotency_key: v.idemKey, card_token: v.cardToken, status: res.statusCode, body: String(res.body).slice(0, 500), correlation_id: res.headers['x-correlation-id'] });
    return next(new Error(`POST /v1/orders -> ${res.statusCode}`));
  }
  v.placedAt = Date.now();
  v.orderId = body.id;
  v.status = body.status;
  record({ type: 'placed', id: body.id, sub: v.sub, idempotency_key: v.idemKey, card_token: v.cardToken, expected: v.expected, status: body.status, correlation_id: res.headers['x-correlation-id'] });
  events.emit('counter', `orders.placed_${v.expected === 'CONFIRMED' ? 'approve' : 'decline'}`, 1);
  if (body.status !== 'PENDING') return next(new Error(`POST /v1/orders: status ${body.status}, want PENDING`));
  if (!auth.sharedToken() && body.customer_id !== v.sub) return next(new Error('POST /v1/orders: customer_id is not the caller'));
  return next();
}

/** afterResponse of the replayed POST (same key, same body): the same order, marked replayed. */
function checkReplay(req, res, context, events, next) {
  const v = context.vars;
  const body = parse(res.body);
  if (res.statusCode !== 201 || body.id !== v.orderId || res.headers['idempotent-replayed'] !== 'true') {
    record({ type: 'replay_mismatch', id: v.orderId, sub: v.sub, status: res.statusCode, replayed: res.headers['idempotent-replayed'] || null, body: String(res.body).slice(0, 500) });
    return next(new Error(`replayed POST /v1/orders -> ${res.statusCode}, not the same order`));
  }
  events.emit('counter', 'orders.replayed_ok', 1);
  return next();
}

/** afterResponse of GET /v1/orders/{id}: 200, the same order, a known status. */
function checkOrder(req, res, context, events, next) {
  const v = context.vars;
  const body = parse(res.body);
  if (res.statusCode !== 200 || body.id !== v.orderId) {
    return next(new Error(`GET /v1/orders/{id} -> ${res.statusCode}`));
  }
  if (!['PENDING', 'CONFIRMED', 'CANCELLED'].includes(body.status)) {
    return next(new Error(`GET /v1/orders/{id}: unknown status ${body.status}`));
  }
  if (v.status !== body.status && TERMINAL.has(body.status)) {
    events.emit('histogram', 'orders.time_to_terminal', Date.now() - v.placedAt);
  }
  v.status = body.status;
  return next();
}

/** ifTrue of the replayed POST. */
const shouldReplay = (vars) => Boolean(vars.replay);

/** whileTrue of the polling loop: still PENDING and polls left. */
function pollAgain(context, next) {
  const v = context.vars;
  v.polls += 1;
  return next(!TERMINAL.has(v.status) && v.polls < MAX_POLLS);
}

/** Last step: a terminal state, the expected one, within the poll budget. */
function recordOutcome(context, events, done) {
  const v = context.vars;
  record({ type: 'final', id: v.orderId, sub: v.sub, status: v.status, expected: v.expected, polls: v.polls, ms: Date.now() - v.placedAt });
  events.emit('histogram', 'orders.polls', v.polls);
  if (!TERMINAL.has(v.status)) {
    events.emit('counter', 'orders.stuck', 1);
    return done(new Error(`order still ${v.status} after ${v.polls} polls`));
  }
  events.emit('counter', `orders.${v.status.toLowerCase()}`, 1);
  if (v.status !== v.expected) {
    events.emit('counter', 'orders.unexpected_outcome', 1);
    return done(new Error(`order ${v.status}, want ${v.expected} for its card token`));
  }
  return done();
}

module.exports = { setupUser, checkPlaced, checkReplay, checkOrder, shouldReplay, pollAgain, recordOutcome };
