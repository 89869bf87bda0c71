//! The local JWT issuer: an HS256 signing key generated once and kept under
//! `.local/local-stack/jwt.json`, used to mint dev tokens and to validate them like the HTTP
//! API's JWT authorizer does (signature, issuer, audience, `exp`, `nbf`).

use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// Issuer of local tokens.
pub const ISSUER: &str = "https://local-stack.invalid/";
/// Audience of local tokens.
pub const AUDIENCE: &str = "local-stack";

/// The signing key and the issuer/audience tokens must carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtKey {
    /// Base64url of the 32-byte HMAC key.
    pub secret: String,
    pub issuer: String,
    pub audience: String,
}

impl JwtKey {
    /// Loads the key from `path`, creating it (and its directory) when missing.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()));
        }
        let mut bytes = Vec::with_capacity(32);
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        let key = Self {
            secret: B64.encode(&bytes),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&key)?)?;
        Ok(key)
    }

    fn secret_bytes(&self) -> anyhow::Result<Vec<u8>> {
        Ok(B64.decode(&self.secret)?)
    }

    /// Mints a token for `sub` with space-separated `scopes`, valid for `ttl_s` seconds.
    pub fn mint(&self, sub: &str, scopes: &[String], ttl_s: i64) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "sub": sub, "iss": self.issuer, "aud": self.audience,
            "iat": now, "exp": now + ttl_s, "token_use": "access",
        });
        if !scopes.is_empty() {
            claims["scope"] = Value::String(scopes.join(" "));
        }
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it for expired or foreign tokens).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT","kid":"local-stack"}"#);
        let payload = B64.encode(serde_json::to_vec(claims)?);
        let input = format!("{header}.{payload}");
        let sig = hmac_sha256(&self.secret_bytes()?, input.as_bytes());
        Ok(format!("{input}.{}", B64.encode(sig)))
    }

    /// Validates a token; returns its claims.
    pub fn validate(&self, token: &str) -> anyhow::Result<Map<String, Value>> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("not a JWT")
        };
        let header: Value = serde_json::from_slice(&B64.decode(h)?)?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            bail!("unexpected alg")
        }
        let expected = hmac_sha256(&self.secret_bytes()?, format!("{h}.{p}").as_bytes());
        let given = B64.decode(s)?;
        if !constant_time_eq(&expected, &given) {
            bail!("bad signature")
        }
        let claims: Map<String, Value> = serde_json::from_slice(&B64.decode(p)?)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            bail!("bad issuer")
        }
        let aud_ok = match claims.get("aud").or_else(|| claims.get("client_id")) {
            Some(Value::String(a)) => a == &self.audience,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !aud_ok {
            bail!("bad audience")
        }
        let now = chrono::Utc::now().timestamp();
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now => {}
            _ => bail!("expired or no exp"),
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now)
        {
            bail!("not yet valid")
        }
        Ok(claims)
    }
}

/// The token's scopes, from its `scope` claim (space-separated) and its `scp` claim (a
/// space-separated string or an array), the claims API Gateway checks a route's
/// `AuthorizationScopes` against.
pub fn token_scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for claim in ["scope", "scp"] {
        let found: Vec<&str> = match claims.get(claim) {
            Some(Value::String(s)) => s.split_whitespace().collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for scope in found {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
    }
    scopes
}

/// Claims as the HTTP API puts them in `authorizer.jwt.claims`: every value a string, arrays
/// as `[a b]`.
pub fn claims_as_strings(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(a) => format!(
                    "[{}]",
                    a.iter()
                        .map(|x| x
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| x.to_string()))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        Sha256::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> JwtKey {
        JwtKey {
            secret: B64.encode([7u8; 32]),
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_minted_token_validates_and_a_tampered_or_expired_one_does_not() {
        let k = key();
        let t = k.mint("alice", &["orders/read".into()], 60).unwrap();
        let claims = k.validate(&t).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["scope"], "orders/read");
        assert!(k.validate(&format!("{t}x")).is_err());
        let now = chrono::Utc::now().timestamp();
        let expired = k
            .sign(&serde_json::json!({"sub":"a","iss":ISSUER,"aud":AUDIENCE,"exp":now-1}))
            .unwrap();
        assert!(k.validate(&expired).is_err());
        let foreign = k
            .sign(&serde_json::json!({"sub":"a","iss":"https://evil/","aud":AUDIENCE,"exp":now+60}))
            .unwrap();
        assert!(k.validate(&foreign).is_err());
    }

    #[test]
    fn scopes_come_from_the_scope_and_scp_claims() {
        let c = serde_json::json!({"scope": "a/orders b", "scp": ["c", "d"]});
        assert_eq!(
            token_scopes(c.as_object().unwrap()),
            ["a/orders", "b", "c", "d"]
        );
        let c = serde_json::json!({"scp": "x y"});
        assert_eq!(token_scopes(c.as_object().unwrap()), ["x", "y"]);
        let c = serde_json::json!({"sub": "id-token", "token_use": "id"});
        assert!(token_scopes(c.as_object().unwrap()).is_empty());
    }

    #[test]
    fn claims_are_passed_as_strings() {
        let c = serde_json::json!({"exp": 5, "aud": ["a", "b"], "sub": "x"});
        let s = claims_as_strings(c.as_object().unwrap());
        assert_eq!(s["exp"], "5");
        assert_eq!(s["aud"], "[a b]");
        assert_eq!(s["sub"], "x");
    }
}
