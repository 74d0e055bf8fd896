//! Request signatures checked by an independent OpenPGP implementation: GnuPG. Keys are made by
//! gpg itself; our signatures must verify with `gpg --verify`, and tampering must be caught.
//! (omni-api.md §2.1-§2.4.) CI installs gnupg; without it these tests fail on purpose.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use omni_client::{
    auth::{sign_metadata, PAYLOAD_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER},
    KeyError, ServiceAccountKey,
};
use tonic::metadata::MetadataMap;

const GPG: &str = "gpg";

/// A throwaway GnuPG home; its agent is stopped on drop.
struct GpgHome {
    dir: tempfile::TempDir,
}

impl GpgHome {
    fn new() -> Self {
        let probe = Command::new(GPG).arg("--version").output();
        assert!(
            matches!(&probe, Ok(o) if o.status.success()),
            "gpg is required for the signing tests (install gnupg): {probe:?}"
        );
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(GPG)
            .arg("--homedir")
            .arg(self.path())
            .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(args)
            .output()
            .expect("run gpg")
    }

    fn run_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Generates a key with `gpg --quick-gen-key` and returns (armored secret, armored public).
    fn gen_key(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        passphrase: &str,
        extra: &[&str],
    ) -> (String, String) {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend([
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            uid,
            algo,
            usage,
            "1y",
        ]);
        self.run_ok(&args);
        let secret = self.run_ok(&[
            "--passphrase",
            passphrase,
            "--armor",
            "--export-secret-keys",
            uid,
        ]);
        let public = self.run_ok(&["--armor", "--export", uid]);
        (
            String::from_utf8(secret).unwrap(),
            String::from_utf8(public).unwrap(),
        )
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.path())
            .args(["--kill", "all"])
            .output();
    }
}

fn key_document(name: &str, armored: &str) -> String {
    let json = serde_json::json!({ "name": name, "pgp_key": armored });
    STANDARD.encode(json.to_string())
}

/// A verifier home that knows only the public key.
fn verifier_with(public: &str) -> GpgHome {
    let v = GpgHome::new();
    let p = v.write("pub.asc", public.as_bytes());
    v.run_ok(&["--import", p.to_str().unwrap()]);
    v
}

/// `gpg --verify`; returns (success, status lines).
fn gpg_verify(verifier: &GpgHome, signature: &[u8], data: &[u8]) -> (bool, String) {
    let sig = verifier.write("sig.bin", signature);
    let dat = verifier.write("data.json", data);
    let out = verifier.run(&[
        "--status-fd",
        "1",
        "--verify",
        sig.to_str().unwrap(),
        dat.to_str().unwrap(),
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

struct Signed {
    timestamp: String,
    payload: String,
    name: String,
    fingerprint: String,
    signature: Vec<u8>,
}

fn sign_call(key: &ServiceAccountKey, method: &str, context: Option<&str>, now: u64) -> Signed {
    let mut md = MetadataMap::new();
    if let Some(c) = context {
        md.insert("context", c.parse().unwrap());
    }
    // Stale signature headers must be replaced, not duplicated.
    md.insert(SIGNATURE_HEADER, "siderov1 stale x y".parse().unwrap());
    sign_metadata(key, &mut md, method, now).unwrap();
    assert_eq!(md.get_all(SIGNATURE_HEADER).iter().count(), 1);
    let header = md
        .get(SIGNATURE_HEADER)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts.len(), 4, "{header}");
    assert_eq!(parts[0], "siderov1");
    Signed {
        timestamp: md
            .get(TIMESTAMP_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string(),
        payload: md
            .get(PAYLOAD_HEADER)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string(),
        name: parts[1].to_string(),
        fingerprint: parts[2].to_string(),
        signature: STANDARD
            .decode(parts[3])
            .expect("standard base64 signature"),
    }
}

#[test]
fn ed25519_key_from_gpg_signs_calls_that_gpg_verifies() {
    let home = GpgHome::new();
    let (secret, public) = home.gen_key(
        "terraform@serviceaccount.omni.sidero.dev",
        "ed25519",
        "sign",
        "",
        &[],
    );
    let key = ServiceAccountKey::from_base64(&key_document("terraform", &secret)).unwrap();

    // Fingerprint: lowercase hex, 40 chars, the same key gpg reports.
    let fpr = key.fingerprint().to_string();
    assert_eq!(fpr.len(), 40);
    assert_eq!(fpr, fpr.to_lowercase());
    let listing =
        String::from_utf8(home.run_ok(&["--with-colons", "--fingerprint", "--list-keys"])).unwrap();
    assert!(listing.contains(&fpr.to_uppercase()), "{listing}");

    // Debug must not leak key material.
    let shown = format!("{key:?}");
    assert!(
        shown.contains("terraform") && !shown.contains("PRIVATE"),
        "{shown}"
    );

    let method = "/management.ManagementService/Kubeconfig";
    let signed = sign_call(&key, method, Some("my-cluster"), 1_767_225_600);
    assert_eq!(signed.name, "terraform");
    assert_eq!(signed.fingerprint, fpr);
    assert_eq!(signed.timestamp, "1767225600");
    assert_eq!(
        signed.payload,
        format!(
            r#"{{"headers":{{"authorization":null,"cluster":null,"context":["my-cluster"],"fieldSelectors":null,"namespace":null,"nodes":null,"runtime":null,"selectors":null,"uid":null,"x-sidero-timestamp":["1767225600"]}},"method":"{method}"}}"#
        )
    );

    let verifier = verifier_with(&public);
    let (ok, status) = gpg_verify(&verifier, &signed.signature, signed.payload.as_bytes());
    assert!(ok, "gpg rejected our signature: {status}");
    assert!(status.contains("GOODSIG"), "{status}");
    assert!(
        status.contains(&format!("VALIDSIG {}", fpr.to_uppercase())),
        "{status}"
    );

    // A binary (class 0x00) signature made with SHA-256, as omni-api.md §2.4 asks.
    let sig_path = verifier.write("sig.bin", &signed.signature);
    let packets =
        String::from_utf8(verifier.run_ok(&["--list-packets", sig_path.to_str().unwrap()]))
            .unwrap();
    assert!(packets.contains("sigclass 0x00"), "{packets}");
    assert!(packets.contains("digest algo 8"), "{packets}");

    // Tampering with the method, a signed header or the timestamp breaks the signature.
    for (what, tampered) in [
        (
            "method",
            signed.payload.replace("Kubeconfig", "Talosconfig"),
        ),
        (
            "header",
            signed.payload.replace("my-cluster", "other-cluster"),
        ),
        (
            "timestamp",
            signed.payload.replace("1767225600", "1767225601"),
        ),
    ] {
        assert_ne!(tampered, signed.payload);
        let (ok, status) = gpg_verify(&verifier, &signed.signature, tampered.as_bytes());
        assert!(!ok, "tampered {what} still verified: {status}");
        assert!(status.contains("BADSIG"), "{what}: {status}");
    }

    // A State call without cluster headers signs only the timestamp.
    let get = sign_call(&key, "/cosi.resource.State/Get", None, 1_700_000_000);
    assert!(get.payload.contains(r#""context":null"#), "{}", get.payload);
    assert!(get
        .payload
        .ends_with(r#""method":"/cosi.resource.State/Get"}"#));
    assert!(gpg_verify(&verifier, &get.signature, get.payload.as_bytes()).0);
}

#[test]
fn rsa2048_key_from_gpg_also_signs() {
    let home = GpgHome::new();
    let (secret, public) = home.gen_key(
        "rsa@serviceaccount.omni.sidero.dev",
        "rsa2048",
        "sign",
        "",
        &[],
    );
    let key = ServiceAccountKey::from_armored("rsa-account", &secret).unwrap();
    let signed = sign_call(&key, "/cosi.resource.State/List", None, 1_700_000_000);
    let verifier = verifier_with(&public);
    let (ok, status) = gpg_verify(&verifier, &signed.signature, signed.payload.as_bytes());
    assert!(ok, "{status}");
}

#[test]
fn unusable_gpg_keys_fail_with_clear_errors() {
    let home = GpgHome::new();

    let (certify_only, public) = home.gen_key("cert@example.com", "ed25519", "cert", "", &[]);
    match ServiceAccountKey::from_armored("cert", &certify_only) {
        Err(e @ KeyError::NoSigningCapability { .. }) => {
            assert!(e.to_string().contains("no signing capability"))
        }
        other => panic!("expected NoSigningCapability, got {other:?}"),
    }

    match ServiceAccountKey::from_armored("pub", &public) {
        Err(KeyError::NoSecretKey(msg)) => assert!(msg.contains("public key"), "{msg}"),
        other => panic!("expected NoSecretKey, got {other:?}"),
    }

    let (encrypted, _) = home.gen_key("enc@example.com", "ed25519", "sign", "correct horse", &[]);
    match ServiceAccountKey::from_armored("enc", &encrypted) {
        Err(e @ KeyError::Encrypted { .. }) => assert!(e.to_string().contains("passphrase")),
        other => panic!("expected Encrypted, got {other:?}"),
    }

    // Made "in 2020" with a one-year lifetime, so it is long expired.
    let (expired, _) = home.gen_key(
        "old@example.com",
        "ed25519",
        "sign",
        "",
        &["--faked-system-time", "20200101T000000!"],
    );
    match ServiceAccountKey::from_armored("old", &expired) {
        Err(e @ KeyError::Expired { .. }) => assert!(e.to_string().contains("expired")),
        other => panic!("expected Expired, got {other:?}"),
    }
}
