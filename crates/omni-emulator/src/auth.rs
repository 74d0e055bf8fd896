//! Request signature verification ("siderov1", omni-api.md §2.2–§2.3).

use std::sync::Arc;

use base64::Engine;
use pgp::composed::{Deserializable, DetachedSignature};
use pgp::crypto::hash::HashAlgorithm;

use crate::keys::{KeyRing, Role};

/// The 10 header names covered by the signature payload (§2.2).
pub const SIGNED_HEADERS: [&str; 10] = [
    "x-sidero-timestamp",
    "nodes",
    "selectors",
    "fieldSelectors",
    "runtime",
    "context",
    "cluster",
    "namespace",
    "uid",
    "authorization",
];

/// Allowed clock skew between client and server (±5 minutes, §2.3).
pub const MAX_SKEW_SECS: i64 = 300;

/// Any signature failure; Omni answers all with Unauthenticated `invalid signature` (§2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid signature")]
pub struct InvalidSignature;

/// Who made an authenticated call.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Service-account name (from the registry, not from the header).
    pub name: String,
    /// Identity e-mail.
    pub email: String,
    /// Effective role.
    pub role: Role,
    /// Key fingerprint.
    pub fingerprint: String,
}

/// Verifies the signature headers of one call. `meta(name)` returns every value of a metadata
/// key (lowercase names as gRPC servers see them). Every failure is the same opaque error,
/// because Omni answers all of them with Unauthenticated `invalid signature`.
pub fn verify(
    ring: &KeyRing,
    method: &str,
    meta: &dyn Fn(&str) -> Vec<String>,
    now_secs: i64,
) -> Result<Identity, InvalidSignature> {
    let sig_header = meta("x-sidero-signature")
        .into_iter()
        .next()
        .ok_or(InvalidSignature)?;
    let mut parts = sig_header.split(' ');
    let (Some("siderov1"), Some(_claimed), Some(fp), Some(sig_b64), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(InvalidSignature);
    };
    let key: Arc<crate::keys::Registered> = ring.lookup(fp).ok_or(InvalidSignature)?;
    if key.entry.expiration <= now_secs {
        return Err(InvalidSignature);
    }
    let ts: i64 = meta("x-sidero-timestamp")
        .into_iter()
        .next()
        .and_then(|t| t.parse().ok())
        .ok_or(InvalidSignature)?;
    if (ts - now_secs).abs() > MAX_SKEW_SECS {
        return Err(InvalidSignature);
    }
    let payload = meta("x-sidero-payload")
        .into_iter()
        .next()
        .ok_or(InvalidSignature)?;
    let parsed: serde_json::Value = serde_json::from_str(&payload).map_err(|_| InvalidSignature)?;
    if parsed.get("method").and_then(|m| m.as_str()) != Some(method) {
        return Err(InvalidSignature);
    }
    let headers = parsed.get("headers");
    for name in SIGNED_HEADERS {
        // Metadata keys are lowercase on the server, so `fieldSelectors` is always absent.
        let actual: Vec<String> = if name.chars().any(|c| c.is_ascii_uppercase()) {
            Vec::new()
        } else {
            meta(name)
        };
        let signed = headers.and_then(|h| h.get(name));
        let ok = match signed {
            None | Some(serde_json::Value::Null) => actual.is_empty(),
            // An empty array does not match an absent header (§2.3 step 4).
            Some(serde_json::Value::Array(a)) => {
                !actual.is_empty()
                    && a.len() == actual.len()
                    && a.iter().zip(&actual).all(|(x, y)| x.as_str() == Some(y))
            }
            Some(_) => false,
        };
        if !ok {
            return Err(InvalidSignature);
        }
    }
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .map_err(|_| InvalidSignature)?;
    let sig = DetachedSignature::from_bytes(&sig_bytes[..]).map_err(|_| InvalidSignature)?;
    // SHA-1 signatures are rejected; SHA-2 family only (§2.3 step 5).
    match sig.signature.hash_alg() {
        Some(
            HashAlgorithm::Sha224
            | HashAlgorithm::Sha256
            | HashAlgorithm::Sha384
            | HashAlgorithm::Sha512,
        ) => {}
        _ => return Err(InvalidSignature),
    }
    sig.verify(&key.key, payload.as_bytes())
        .map_err(|_| InvalidSignature)?;
    Ok(Identity {
        name: key.entry.name.clone(),
        email: crate::keys::identity_email(&key.entry.name),
        role: key.entry.role,
        fingerprint: key.entry.fingerprint.clone(),
    })
}
