//! Service-account keys: generation in the `OMNI_SERVICE_ACCOUNT_KEY` format (omni-api.md §2.1)
//! and the registry of accepted public keys.
//!
//! The registry is a directory `keys.d/` with one JSON file per key (named by fingerprint),
//! written atomically. One file per key means the CLI and a running emulator never race on a
//! shared file; the server re-reads the directory when it sees an unknown fingerprint, so a key
//! created by `omni-emulator service-account create` works at once.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;
use pgp::composed::{
    ArmorOptions, Deserializable, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::KeyDetails;
use serde::{Deserialize, Serialize};

/// Omni access roles, ordered (omni-api.md §1.7): None < InfraProvider < Reader < Auditor <
/// Operator < Admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
pub enum Role {
    /// No access.
    None,
    /// Infrastructure provider.
    InfraProvider,
    /// Read-only.
    Reader,
    /// Read-only plus audit log.
    Auditor,
    /// Manage clusters.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Parses the role name as Omni spells it.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "None" => Role::None,
            "InfraProvider" => Role::InfraProvider,
            "Reader" => Role::Reader,
            "Auditor" => Role::Auditor,
            "Operator" => Role::Operator,
            "Admin" => Role::Admin,
            _ => return None,
        })
    }

    /// Name as Omni spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "None",
            Role::InfraProvider => "InfraProvider",
            Role::Reader => "Reader",
            Role::Auditor => "Auditor",
            Role::Operator => "Operator",
            Role::Admin => "Admin",
        }
    }
}

/// Errors of key handling.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// OpenPGP failure.
    #[error("openpgp: {0}")]
    Pgp(String),
    /// File system failure.
    #[error("key store: {0}")]
    Io(#[from] std::io::Error),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
}

fn pgp_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Pgp(e.to_string())
}

/// One registered public key, as persisted in `keys.d/<fingerprint>.json`.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    /// Service-account name as given at creation.
    pub name: String,
    /// Lowercase hex v4 fingerprint.
    pub fingerprint: String,
    /// Role of the account.
    pub role: Role,
    /// Armored public key.
    pub public_key: String,
    /// Unix seconds after which the key is rejected.
    pub expiration: i64,
    /// Unix seconds of creation.
    pub created: i64,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("name", &self.name)
            .field("fingerprint", &self.fingerprint)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A freshly generated service-account key. The secret never reaches Debug output.
pub struct GeneratedKey {
    /// `OMNI_SERVICE_ACCOUNT_KEY` value: base64 of `{"name","pgp_key"}`.
    pub service_account_key: String,
    /// Public registry entry.
    pub entry: KeyEntry,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// Service-account identity e-mail (omni-api.md §2.1).
pub fn identity_email(name: &str) -> String {
    match name.strip_prefix("infra-provider:") {
        Some(x) => format!("{x}@infra-provider.serviceaccount.omni.sidero.dev"),
        None => format!("{name}@serviceaccount.omni.sidero.dev"),
    }
}

/// Lowercase hex fingerprint of a key.
pub fn fingerprint_hex(k: &impl KeyDetails) -> String {
    hex::encode(k.fingerprint().as_bytes())
}

/// Generates a v4 EdDSA-legacy (Ed25519) primary key with an ECDH Curve25519 subkey, like
/// omnictl does (§2.1), and wraps it in the service-account key format.
pub fn generate(name: &str, role: Role, ttl_secs: i64) -> Result<GeneratedKey, KeyError> {
    // A generated key must survive its own round trip (armor → parse) before it is handed out;
    // retry a few times rather than return a key no client could load.
    let mut last = None;
    for _ in 0..5 {
        match generate_once(name, role, ttl_secs) {
            Ok(g) if parse_service_account_key(&g.service_account_key).is_ok() => return Ok(g),
            Ok(_) => last = Some(KeyError::Pgp("generated key did not parse back".into())),
            Err(e @ KeyError::Invalid(_)) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| KeyError::Pgp("key generation failed".into())))
}

fn generate_once(name: &str, role: Role, ttl_secs: i64) -> Result<GeneratedKey, KeyError> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(KeyError::Invalid(
            "service account name must be non-empty and without spaces".into(),
        ));
    }
    let email = identity_email(name);
    let base = name.strip_prefix("infra-provider:").unwrap_or(name);
    let params = SecretKeyParamsBuilder::default()
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(format!("{base} (omni-emulator) {email}"))
        .preferred_hash_algorithms(std::iter::once(HashAlgorithm::Sha256).collect())
        .subkey(
            SubkeyParamsBuilder::default()
                .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
                .can_encrypt(pgp::composed::EncryptionCaps::All)
                .build()
                .map_err(pgp_err)?,
        )
        .build()
        .map_err(pgp_err)?;
    let secret = params.generate(rand::thread_rng()).map_err(pgp_err)?;
    let armored = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(pgp_err)?;
    let public = secret
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .map_err(pgp_err)?;
    let json = serde_json::json!({ "name": name, "pgp_key": armored });
    let now = crate::model::Time::now().secs;
    Ok(GeneratedKey {
        service_account_key: base64::engine::general_purpose::STANDARD.encode(json.to_string()),
        entry: KeyEntry {
            name: name.to_string(),
            fingerprint: fingerprint_hex(&secret.primary_key),
            role,
            public_key: public,
            expiration: now + ttl_secs,
            created: now,
        },
    })
}

/// Parses an `OMNI_SERVICE_ACCOUNT_KEY` value into (name, secret key).
pub fn parse_service_account_key(b64: &str) -> Result<(String, SignedSecretKey), KeyError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| KeyError::Invalid(format!("service account key is not base64: {e}")))?;
    #[derive(Deserialize)]
    struct Sa {
        name: String,
        pgp_key: String,
    }
    let sa: Sa = serde_json::from_slice(&raw)
        .map_err(|e| KeyError::Invalid(format!("service account key is not JSON: {e}")))?;
    let (key, _) = SignedSecretKey::from_string(&sa.pgp_key).map_err(pgp_err)?;
    Ok((sa.name, key))
}

/// A registered key with its parsed public key.
pub struct Registered {
    /// Registry entry.
    pub entry: KeyEntry,
    /// Parsed public key.
    pub key: SignedPublicKey,
}

/// The set of accepted keys, backed by `keys.d/` (or memory only).
pub struct KeyRing {
    dir: Option<PathBuf>,
    keys: RwLock<HashMap<String, Arc<Registered>>>,
}

impl KeyRing {
    /// A ring stored in `<data_dir>/keys.d`.
    pub fn open(data_dir: &Path) -> Result<KeyRing, KeyError> {
        let dir = data_dir.join("keys.d");
        fs::create_dir_all(&dir)?;
        let ring = KeyRing {
            dir: Some(dir),
            keys: RwLock::new(HashMap::new()),
        };
        ring.reload();
        Ok(ring)
    }

    /// A ring kept only in memory.
    pub fn in_memory() -> KeyRing {
        KeyRing {
            dir: None,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// Re-reads `keys.d/` (picks up keys added by the CLI, drops removed ones).
    pub fn reload(&self) {
        let Some(dir) = &self.dir else { return };
        let mut map = HashMap::new();
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                let Ok(text) = fs::read_to_string(&p) else {
                    continue;
                };
                let Ok(entry) = serde_json::from_str::<KeyEntry>(&text) else {
                    continue;
                };
                let Ok((key, _)) = SignedPublicKey::from_string(&entry.public_key) else {
                    continue;
                };
                map.insert(
                    entry.fingerprint.clone(),
                    Arc::new(Registered { entry, key }),
                );
            }
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = map;
    }

    /// Looks a fingerprint up; on a miss re-reads the directory once.
    pub fn lookup(&self, fingerprint: &str) -> Option<Arc<Registered>> {
        if let Some(k) = self.get(fingerprint) {
            return Some(k);
        }
        if self.dir.is_some() {
            self.reload();
            return self.get(fingerprint);
        }
        None
    }

    fn get(&self, fingerprint: &str) -> Option<Arc<Registered>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(fingerprint)
            .cloned()
    }

    /// Registers a key (persisting it when the ring has a directory).
    pub fn add(&self, entry: KeyEntry) -> Result<(), KeyError> {
        let (key, _) = SignedPublicKey::from_string(&entry.public_key).map_err(pgp_err)?;
        if let Some(dir) = &self.dir {
            write_atomic(
                &dir.join(format!("{}.json", entry.fingerprint)),
                serde_json::to_string_pretty(&entry)
                    .map_err(|e| KeyError::Invalid(e.to_string()))?
                    .as_bytes(),
            )?;
        }
        self.keys.write().unwrap_or_else(|e| e.into_inner()).insert(
            entry.fingerprint.clone(),
            Arc::new(Registered { entry, key }),
        );
        Ok(())
    }

    /// Removes every key of a service account; returns how many were removed.
    pub fn remove_account(&self, name: &str) -> usize {
        self.reload();
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let fps: Vec<String> = keys
            .values()
            .filter(|k| k.entry.name == name)
            .map(|k| k.entry.fingerprint.clone())
            .collect();
        for fp in &fps {
            keys.remove(fp);
            if let Some(dir) = &self.dir {
                let _ = fs::remove_file(dir.join(format!("{fp}.json")));
            }
        }
        fps.len()
    }

    /// All registered keys, sorted by account name then creation.
    pub fn all(&self) -> Vec<Arc<Registered>> {
        self.reload();
        let mut v: Vec<_> = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            (a.entry.name.as_str(), a.entry.created).cmp(&(b.entry.name.as_str(), b.entry.created))
        });
        v
    }
}

/// Writes a file atomically: temp file in the same directory, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Default service-account TTL: 365 days (omni-api.md §2.1).
pub const DEFAULT_TTL_SECS: i64 = 365 * 86_400;

/// Creates a key for `name` in the data directory's registry and returns the encoded key.
/// Works whether or not an emulator runs on that directory.
pub fn create_in_dir(data_dir: &Path, name: &str, role: Role) -> Result<GeneratedKey, KeyError> {
    let ring = KeyRing::open(data_dir)?;
    let g = generate(name, role, DEFAULT_TTL_SECS)?;
    ring.add(g.entry.clone())?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips() {
        let g = generate("terraform", Role::Operator, 3600).unwrap();
        let (name, sk) = parse_service_account_key(&g.service_account_key).unwrap();
        assert_eq!(name, "terraform");
        assert_eq!(fingerprint_hex(&sk.primary_key), g.entry.fingerprint);
        assert_eq!(g.entry.fingerprint.len(), 40);
        assert_eq!(
            sk.primary_key.algorithm(),
            pgp::crypto::public_key::PublicKeyAlgorithm::EdDSALegacy
        );
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::open(dir.path()).unwrap();
        ring.add(g.entry.clone()).unwrap();
        let ring2 = KeyRing::open(dir.path()).unwrap();
        assert!(ring2.lookup(&g.entry.fingerprint).is_some());
        assert_eq!(ring2.remove_account("terraform"), 1);
        assert!(KeyRing::open(dir.path())
            .unwrap()
            .lookup(&g.entry.fingerprint)
            .is_none());
    }
}
