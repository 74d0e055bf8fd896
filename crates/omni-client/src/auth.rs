//! Service-account keys and "siderov1" request signing (omni-api.md §2).
//!
//! [`RequestSigner`] is the one tonic interceptor that signs every unary call and every stream
//! start: it stamps `x-sidero-timestamp`, builds the JSON payload over the ten signed headers and
//! the method, signs it with the key's primary OpenPGP key and adds `x-sidero-payload` and
//! `x-sidero-signature`.

use std::{
    collections::BTreeMap,
    fmt,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use pgp::{
    composed::{Deserializable, DetachedSignature, SignedSecretKey},
    crypto::hash::HashAlgorithm,
    packet::Signature,
    ser::Serialize as _,
    types::{KeyDetails, Password, SecretParams},
};
use tonic::{metadata::MetadataMap, service::Interceptor, GrpcMethod, Request, Status};

use crate::error::KeyError;

/// Environment variables holding the key, in the order they are read (omni-api.md §2.1).
pub const KEY_ENV_VARS: [&str; 2] = ["SIDERO_SERVICE_ACCOUNT_KEY", "OMNI_SERVICE_ACCOUNT_KEY"];

/// Metadata key carrying the Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "x-sidero-timestamp";
/// Metadata key carrying the signed JSON payload.
pub const PAYLOAD_HEADER: &str = "x-sidero-payload";
/// Metadata key carrying `siderov1 <name> <fingerprint> <signature>`.
pub const SIGNATURE_HEADER: &str = "x-sidero-signature";
/// Signature scheme tag.
pub const SIGNATURE_VERSION: &str = "siderov1";

/// The ten header names whose values are part of the signed payload (omni-api.md §2.2).
pub const SIGNED_HEADERS: [&str; 10] = [
    TIMESTAMP_HEADER,
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

/// The base64 JSON document Omni hands out for a service account.
#[derive(serde::Deserialize)]
struct KeyDocument {
    name: String,
    pgp_key: String,
}

/// A loaded service-account key: the account name and its unencrypted OpenPGP secret key.
///
/// `Debug` shows only the name and the fingerprint; the key material is never printed.
#[derive(Clone)]
pub struct ServiceAccountKey {
    name: String,
    fingerprint: String,
    key: Arc<SignedSecretKey>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Reads `SIDERO_SERVICE_ACCOUNT_KEY`, else `OMNI_SERVICE_ACCOUNT_KEY` (empty counts as unset).
    pub fn from_env() -> Result<Self, KeyError> {
        for var in KEY_ENV_VARS {
            if let Ok(value) = std::env::var(var) {
                if !value.trim().is_empty() {
                    return Self::from_base64(&value);
                }
            }
        }
        Err(KeyError::Missing)
    }

    /// Parses the base64 form handed out by Omni (`omnictl serviceaccount create`, the UI).
    pub fn from_base64(value: &str) -> Result<Self, KeyError> {
        // Whitespace may sneak in from files or line-wrapped env values; base64 has none itself.
        let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| KeyError::NotBase64(e.to_string()))?;
        let doc: KeyDocument =
            serde_json::from_slice(&raw).map_err(|e| KeyError::NotJson(e.to_string()))?;
        Self::from_armored(&doc.name, &doc.pgp_key)
    }

    /// Builds a key from a name and an ASCII-armored OpenPGP secret key.
    pub fn from_armored(name: &str, armored_secret_key: &str) -> Result<Self, KeyError> {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(KeyError::InvalidName(name.to_string()));
        }
        if armored_secret_key.contains("BEGIN PGP PUBLIC KEY BLOCK") {
            return Err(KeyError::NoSecretKey(
                "found a public key block; the secret key is needed to sign".into(),
            ));
        }
        let (key, _headers) = SignedSecretKey::from_string(armored_secret_key)
            .map_err(|e| KeyError::NoSecretKey(e.to_string()))?;
        let fingerprint = format!("{:x}", key.primary_key.fingerprint());

        if matches!(key.primary_key.secret_params(), SecretParams::Encrypted(_)) {
            return Err(KeyError::Encrypted { fingerprint });
        }
        check_can_sign(&key, &fingerprint)?;
        check_not_expired(&key, &fingerprint, SystemTime::now())?;

        Ok(Self {
            name: name.to_string(),
            fingerprint,
            key: Arc::new(key),
        })
    }

    /// The service-account name used as identity in the signature header.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lowercase hex v4 fingerprint of the primary key: Omni's lookup key (omni-api.md §2.2).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public half, ASCII-armored (what `CreateServiceAccount` registers).
    pub fn public_key_armored(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key()
            .to_armored_string(Default::default())
            .map_err(|e| KeyError::Signing(e.to_string()))
    }

    /// Makes a binary detached signature (type 0x00, SHA-256) over `payload` with the primary
    /// key and returns the serialized packet (omni-api.md §2.4 step 3c).
    pub fn sign_detached(&self, payload: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.key.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            payload,
        )
        .map_err(|e| KeyError::Signing(e.to_string()))?;
        sig.to_bytes().map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// Self-signatures of the primary key: direct-key signatures and user-ID certifications.
fn self_signatures(key: &SignedSecretKey) -> impl Iterator<Item = &Signature> {
    key.details
        .direct_signatures
        .iter()
        .chain(key.details.users.iter().flat_map(|u| u.signatures.iter()))
}

fn check_can_sign(key: &SignedSecretKey, fingerprint: &str) -> Result<(), KeyError> {
    let no_signing = || KeyError::NoSigningCapability {
        fingerprint: fingerprint.to_string(),
    };
    if !key.primary_key.algorithm().can_sign() {
        return Err(no_signing());
    }
    let mut any_flags = false;
    for sig in self_signatures(key) {
        let flags = sig.key_flags();
        if flags.sign() {
            return Ok(());
        }
        any_flags |= flags.certify() || flags.encrypt_comms() || flags.encrypt_storage();
    }
    // Key flags are optional in OpenPGP: without any, a sign-capable algorithm may sign.
    if any_flags {
        Err(no_signing())
    } else {
        Ok(())
    }
}

fn check_not_expired(
    key: &SignedSecretKey,
    fingerprint: &str,
    now: SystemTime,
) -> Result<(), KeyError> {
    // The newest self-signature carries the current expiration (renewals re-sign).
    let newest = self_signatures(key)
        .filter(|s| s.created().is_some())
        .max_by_key(|s| s.created().map(|t| t.as_secs()));
    let Some(expiry) = newest.and_then(|s| s.key_expiration_time()) else {
        return Ok(());
    };
    if expiry.as_secs() == 0 {
        return Ok(()); // 0 means "never expires"
    }
    let created = UNIX_EPOCH + Duration::from_secs(key.primary_key.created_at().as_secs().into());
    let expired_at = created + Duration::from_secs(expiry.as_secs().into());
    if expired_at <= now {
        return Err(KeyError::Expired {
            fingerprint: fingerprint.to_string(),
            expired_at,
        });
    }
    Ok(())
}

/// Builds the exact JSON payload that is signed for `method` (omni-api.md §2.2): an object with
/// `headers` (each of the ten names, its values from `metadata` or `null`) and `method`.
/// serde_json with a BTreeMap sorts keys the same way Go's encoder does.
pub fn signing_payload(metadata: &MetadataMap, method: &str) -> String {
    let mut headers: BTreeMap<&str, Option<Vec<String>>> = BTreeMap::new();
    for name in SIGNED_HEADERS {
        // gRPC metadata keys are lowercase on the wire; `fieldSelectors` can only be absent.
        let lookup = name.to_ascii_lowercase();
        let values: Vec<String> = metadata
            .get_all(lookup.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        headers.insert(name, (!values.is_empty()).then_some(values));
    }
    #[derive(serde::Serialize)]
    struct Payload<'a> {
        headers: BTreeMap<&'a str, Option<Vec<String>>>,
        method: &'a str,
    }
    serde_json::to_string(&Payload { headers, method }).expect("a map of strings always serializes")
}

/// Signs `metadata` in place for a call to `method` at Unix time `now_secs`.
pub fn sign_metadata(
    key: &ServiceAccountKey,
    metadata: &mut MetadataMap,
    method: &str,
    now_secs: u64,
) -> Result<(), KeyError> {
    metadata.remove(PAYLOAD_HEADER);
    metadata.remove(SIGNATURE_HEADER);
    metadata.remove(TIMESTAMP_HEADER);
    let ts = now_secs.to_string();
    metadata.insert(
        TIMESTAMP_HEADER,
        ts.parse()
            .map_err(|_| KeyError::Signing("timestamp header".into()))?,
    );

    let payload = signing_payload(metadata, method);
    let signature = STANDARD.encode(key.sign_detached(payload.as_bytes())?);
    let header = format!(
        "{SIGNATURE_VERSION} {} {} {signature}",
        key.name, key.fingerprint
    );
    metadata.insert(
        PAYLOAD_HEADER,
        payload.parse().map_err(|_| {
            KeyError::Signing("payload contains characters not allowed in a header".into())
        })?,
    );
    metadata.insert(
        SIGNATURE_HEADER,
        header
            .parse()
            .map_err(|_| KeyError::Signing("signature header is not ASCII".into()))?,
    );
    Ok(())
}

/// The tonic interceptor that signs every outgoing call (unary, and each stream when it opens).
/// Without a key it passes calls through unsigned (for servers that do not check signatures).
#[derive(Clone, Debug, Default)]
pub struct RequestSigner {
    key: Option<ServiceAccountKey>,
}

impl RequestSigner {
    /// A signer using `key`, or a pass-through when `None`.
    pub fn new(key: Option<ServiceAccountKey>) -> Self {
        Self { key }
    }
}

impl Interceptor for RequestSigner {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(key) = &self.key else {
            return Ok(request);
        };
        // The generated clients record the method; the full path is what Omni compares.
        let method = request
            .extensions()
            .get::<GrpcMethod>()
            .map(|m| format!("/{}/{}", m.service(), m.method()))
            .ok_or_else(|| Status::internal("cannot sign: gRPC method unknown"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Status::internal("system clock before 1970"))?
            .as_secs();
        sign_metadata(key, request.metadata_mut(), &method, now)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_the_go_encoding_from_the_spec() {
        // omni-api.md §2.2 gives this exact text for a Kubeconfig call with `context`.
        let mut md = MetadataMap::new();
        md.insert("context", "my-cluster".parse().unwrap());
        md.insert(TIMESTAMP_HEADER, "1700000000".parse().unwrap());
        let got = signing_payload(&md, "/management.ManagementService/Kubeconfig");
        assert_eq!(
            got,
            r#"{"headers":{"authorization":null,"cluster":null,"context":["my-cluster"],"fieldSelectors":null,"namespace":null,"nodes":null,"runtime":null,"selectors":null,"uid":null,"x-sidero-timestamp":["1700000000"]},"method":"/management.ManagementService/Kubeconfig"}"#
        );
    }

    #[test]
    fn env_vars_are_read_sidero_first() {
        // The only test touching these variables, so no other test races with it.
        std::env::set_var(KEY_ENV_VARS[0], "not base64 !!");
        std::env::set_var(KEY_ENV_VARS[1], STANDARD.encode("hello"));
        assert!(matches!(
            ServiceAccountKey::from_env(),
            Err(KeyError::NotBase64(_))
        ));
        std::env::set_var(KEY_ENV_VARS[0], "  ");
        assert!(matches!(
            ServiceAccountKey::from_env(),
            Err(KeyError::NotJson(_))
        ));
        std::env::remove_var(KEY_ENV_VARS[0]);
        std::env::remove_var(KEY_ENV_VARS[1]);
        assert!(matches!(
            ServiceAccountKey::from_env(),
            Err(KeyError::Missing)
        ));
    }

    #[test]
    fn bad_key_documents_give_specific_errors() {
        assert!(matches!(
            ServiceAccountKey::from_base64("not base64 !!"),
            Err(KeyError::NotBase64(_))
        ));
        let not_json = STANDARD.encode("hello");
        assert!(matches!(
            ServiceAccountKey::from_base64(&not_json),
            Err(KeyError::NotJson(_))
        ));
        let wrong_shape = STANDARD.encode(r#"{"name":"x"}"#);
        assert!(matches!(
            ServiceAccountKey::from_base64(&wrong_shape),
            Err(KeyError::NotJson(_))
        ));
        let no_key = STANDARD.encode(r#"{"name":"x","pgp_key":"garbage"}"#);
        assert!(matches!(
            ServiceAccountKey::from_base64(&no_key),
            Err(KeyError::NoSecretKey(_))
        ));
        let spaced = STANDARD.encode(r#"{"name":"a b","pgp_key":"garbage"}"#);
        assert!(matches!(
            ServiceAccountKey::from_base64(&spaced),
            Err(KeyError::InvalidName(_))
        ));
    }
}
