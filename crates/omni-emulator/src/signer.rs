//! A small request signer for the emulator's own tests and benchmark.
//!
//! The emulator must not use the production client (STYLE.md), so its tests sign calls with this
//! independent implementation of omni-api.md §2.4.

use base64::Engine;
use pgp::composed::{DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::Password;

use crate::keys::{fingerprint_hex, parse_service_account_key, KeyError};

/// Signs calls for one service account.
#[derive(Clone)]
pub struct Signer {
    name: String,
    key: SignedSecretKey,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Builds a signer from an `OMNI_SERVICE_ACCOUNT_KEY` value.
    pub fn from_service_account_key(b64: &str) -> Result<Signer, KeyError> {
        let (name, key) = parse_service_account_key(b64)?;
        let fingerprint = fingerprint_hex(&key.primary_key);
        Ok(Signer {
            name,
            key,
            fingerprint,
        })
    }

    /// Returns the three signature headers for `method` given the other signed headers
    /// present on the call (`extra`: name → values), signing at `ts` (Unix seconds).
    pub fn headers_at(
        &self,
        method: &str,
        extra: &[(&str, &str)],
        ts: i64,
    ) -> Vec<(String, String)> {
        let mut headers = serde_json::Map::new();
        headers.insert(
            "x-sidero-timestamp".into(),
            serde_json::json!([ts.to_string()]),
        );
        for (k, v) in extra {
            headers.insert(k.to_string(), serde_json::json!([v]));
        }
        let payload = serde_json::json!({"headers": headers, "method": method}).to_string();
        self.headers_for_payload(&payload, ts)
    }

    /// Signs a caller-chosen payload text (for negative tests).
    pub fn headers_for_payload(&self, payload: &str, ts: i64) -> Vec<(String, String)> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            payload.as_bytes(),
        );
        let sig_b64 = match sig.and_then(|s| pgp::ser::Serialize::to_bytes(&s)) {
            Ok(b) => base64::engine::general_purpose::STANDARD.encode(b),
            Err(_) => String::new(),
        };
        vec![
            ("x-sidero-timestamp".into(), ts.to_string()),
            ("x-sidero-payload".into(), payload.to_string()),
            (
                "x-sidero-signature".into(),
                format!("siderov1 {} {} {}", self.name, self.fingerprint, sig_b64),
            ),
        ]
    }

    /// Signature headers for a call made now.
    pub fn headers(&self, method: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        self.headers_at(method, extra, crate::model::Time::now().secs)
    }

    /// Adds the signature (and the `extra` headers themselves) to a tonic request.
    pub fn sign<T>(
        &self,
        method: &str,
        extra: &[(&str, &str)],
        mut req: tonic::Request<T>,
    ) -> tonic::Request<T> {
        let md = req.metadata_mut();
        for (k, v) in extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(self.headers(method, extra))
        {
            if let (Ok(k), Ok(v)) = (
                tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                v.parse(),
            ) {
                md.insert(k, v);
            }
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{generate, KeyRing, Role};

    fn meta_of(h: Vec<(String, String)>) -> impl Fn(&str) -> Vec<String> {
        move |n: &str| {
            h.iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .collect()
        }
    }

    #[test]
    fn sign_and_verify() {
        let g = generate("t", Role::Reader, 3600).unwrap();
        let ring = KeyRing::in_memory();
        ring.add(g.entry.clone()).unwrap();
        let s = Signer::from_service_account_key(&g.service_account_key).unwrap();
        let now = crate::model::Time::now().secs;
        let m = "/cosi.resource.State/Get";
        let mut h = s.headers_at(m, &[("context", "c1")], now);
        h.push(("context".into(), "c1".into()));
        let id = crate::auth::verify(&ring, m, &meta_of(h.clone()), now).unwrap();
        assert_eq!(id.role, Role::Reader);
        // wrong method
        assert!(
            crate::auth::verify(&ring, "/cosi.resource.State/List", &meta_of(h.clone()), now)
                .is_err()
        );
        // header tampered
        let mut t = h.clone();
        t.last_mut().unwrap().1 = "c2".into();
        assert!(crate::auth::verify(&ring, m, &meta_of(t), now).is_err());
        // stale
        assert!(crate::auth::verify(&ring, m, &meta_of(h.clone()), now + 301).is_err());
        assert!(crate::auth::verify(&ring, m, &meta_of(h), now + 299).is_ok());
        // unknown key
        let other = generate("o", Role::Admin, 3600).unwrap();
        let s2 = Signer::from_service_account_key(&other.service_account_key).unwrap();
        assert!(crate::auth::verify(&ring, m, &meta_of(s2.headers_at(m, &[], now)), now).is_err());
        // empty array does not match an absent header
        let p = format!(
            r#"{{"headers":{{"x-sidero-timestamp":["{now}"],"cluster":[]}},"method":"{m}"}}"#
        );
        assert!(
            crate::auth::verify(&ring, m, &meta_of(s.headers_for_payload(&p, now)), now).is_err()
        );
        let p = format!(
            r#"{{"headers":{{"x-sidero-timestamp":["{now}"],"cluster":null}},"method":"{m}"}}"#
        );
        assert!(
            crate::auth::verify(&ring, m, &meta_of(s.headers_for_payload(&p, now)), now).is_ok()
        );
    }
}
