'use strict';
// Bearer tokens for the load test and its checker.
//
// - Against a deployed stage: TOKEN (e.g. a Cognito client-credentials access token, see
//   docs/deploy.md / infra/smoke.sh) is used as is; every virtual user shares its `sub`.
// - Locally: HS256 JWTs signed with the local runner's key (.local/local-stack/jwt.json, see
//   tools/local/local-stack/src/jwt.rs), one `sub` per virtual user. No external call.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const KEY_FILE = process.env.LOAD_JWT_KEY || path.join(REPO, '.local', 'local-stack', 'jwt.json');
const SCOPES = process.env.LOAD_SCOPES || 'shop/orders';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

let key = null;
function loadKey() {
  if (!key) {
    const k = JSON.parse(fs.readFileSync(KEY_FILE, 'utf8'));
    key = { secret: Buffer.from(k.secret, 'base64url'), issuer: k.issuer, audience: k.audience };
  }
  return key;
}

/** A local token for `sub`, like `local-stack token --sub <sub> --scopes "shop/orders"`. */
function mintLocal(sub, ttlS = 3600) {
  const k = loadKey();
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'local-stack' }));
  const claims = { sub, iss: k.issuer, aud: k.audience, iat: now, exp: now + ttlS, token_use: 'access' };
  if (SCOPES) claims.scope = SCOPES;
  const input = `${header}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.createHmac('sha256', k.secret).update(input).digest();
  return `${input}.${b64url(sig)}`;
}

/** The `sub` (or `client_id`) of a JWT, without verifying it; 'token' when unreadable. */
function subOf(token) {
  try {
    const c = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    return c.sub || c.client_id || 'token';
  } catch {
    return 'token';
  }
}

/** Shared stage token, or null in local mode. */
const sharedToken = () => process.env.TOKEN || null;

/** The token to use for `sub`. */
function tokenFor(sub) {
  return sharedToken() || mintLocal(sub);
}

module.exports = { mintLocal, subOf, sharedToken, tokenFor, KEY_FILE };
