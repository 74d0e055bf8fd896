//! The plugin process as Terraform sees it: handshake line, AutoMTLS that
//! refuses clients without Terraform's certificate, hclog JSON on stderr,
//! and the `--debug` reattach mode driven by the real `terraform`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tfptest");

struct Plugin {
    child: Child,
    line: String,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(envs: &[(&str, &str)]) -> Plugin {
    let mut cmd = Command::new(PROVIDER_BIN);
    cmd.env(tfplugin::MAGIC_COOKIE_KEY, tfplugin::MAGIC_COOKIE_VALUE)
        .env_remove("PLUGIN_CLIENT_CERT")
        .env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Plugin {
        child,
        line: line.trim_end().to_string(),
    }
}

#[test]
fn handshake_line_uses_a_private_unix_socket() {
    let p = start(&[]);
    let parts: Vec<&str> = p.line.split('|').collect();
    assert_eq!(parts.len(), 6, "{}", p.line);
    assert_eq!(&parts[..3], ["1", "6", "unix"]);
    assert_eq!(parts[4], "grpc");
    assert_eq!(parts[5], "", "no certificate without PLUGIN_CLIENT_CERT");
    let sock = std::path::Path::new(parts[3]);
    assert!(sock.exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(sock.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "socket dir must be private, mode {mode:o}");
}

#[test]
fn tcp_fallback_listens_on_loopback() {
    let p = start(&[("TF_PLUGIN_TRANSPORT", "tcp")]);
    let parts: Vec<&str> = p.line.split('|').collect();
    assert_eq!(parts[2], "tcp");
    assert!(parts[3].starts_with("127.0.0.1:"), "{}", p.line);
}

#[derive(Debug)]
struct Pinned(Vec<u8>);

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        assert_eq!(
            end_entity.as_ref(),
            self.0.as_slice(),
            "server cert = handshake cert"
        );
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects over TLS, sends the HTTP/2 preface and returns what the server
/// answered (its SETTINGS frame) or the error.
async fn h2_probe(
    addr: &str,
    server_cert: Vec<u8>,
    client: Option<(Vec<u8>, Vec<u8>)>,
) -> std::io::Result<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(server_cert)));
    let mut config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await?;
    tls.flush().await?;
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    if n == 0 {
        return Err(std::io::Error::other("closed"));
    }
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn auto_mtls_requires_terraforms_client_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&other_key)
        .unwrap();

    let p = start(&[
        ("PLUGIN_CLIENT_CERT", &cert.pem()),
        ("TF_PLUGIN_TRANSPORT", "tcp"),
    ]);
    let parts: Vec<&str> = p.line.split('|').collect();
    use base64::Engine;
    let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(parts[5])
        .expect("handshake carries the DER certificate, base64 without padding");
    let addr = parts[3].to_string();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = h2_probe(
            &addr,
            server_cert.clone(),
            Some((cert.der().to_vec(), key.serialize_der())),
        )
        .await
        .expect("Terraform's certificate is accepted");
        assert_eq!(
            settings[3], 0x04,
            "server answered with an HTTP/2 SETTINGS frame"
        );

        let none = h2_probe(&addr, server_cert.clone(), None).await;
        assert!(
            none.is_err(),
            "a client without certificate must be refused"
        );

        let wrong = h2_probe(
            &addr,
            server_cert.clone(),
            Some((other.der().to_vec(), other_key.serialize_der())),
        )
        .await;
        assert!(wrong.is_err(), "a different certificate must be refused");
    });
}

#[test]
fn logs_are_hclog_json_on_stderr_and_stdout_has_only_the_handshake() {
    let mut p = start(&[("TF_LOG_PROVIDER", "DEBUG")]);
    std::thread::sleep(Duration::from_millis(200));
    let _ = p.child.kill();
    let mut rest = String::new();
    p.child
        .stdout
        .take()
        .map(|mut s| s.read_to_string(&mut rest));
    assert!(
        rest.is_empty(),
        "only the handshake on stdout, got {rest:?}"
    );
    let mut err = String::new();
    p.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert!(!lines.is_empty(), "debug level logs something at start");
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        assert_eq!(v["@module"], "provider.tfptest");
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&v["@level"].as_str().unwrap())
        );
        let ts = v["@timestamp"].as_str().unwrap();
        assert_eq!(ts.len(), 27, "six fractional digits: {ts}");
        assert!(ts.ends_with('Z'));
        assert!(v["@message"].is_string());
    }
}

#[test]
fn log_level_off_writes_nothing() {
    let mut p = start(&[("TF_LOG", "OFF")]);
    std::thread::sleep(Duration::from_millis(100));
    let _ = p.child.kill();
    let mut err = String::new();
    p.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.is_empty(), "{err}");
}

#[test]
fn debug_mode_prints_reattach_and_terraform_attaches() {
    let terraform = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|p| p.join("terraform"))
        .find(|p| p.is_file())
        .expect("`terraform` must be on PATH for this test");
    let mut child = Command::new(PROVIDER_BIN)
        .arg("--debug")
        .env_remove(tfplugin::MAGIC_COOKIE_KEY)
        .env_remove("TF_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut reattach = None;
    for _ in 0..10 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(v) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS=") {
            reattach = Some(v.trim_matches('\'').to_string());
            break;
        }
    }
    let reattach = reattach.expect("debug mode prints TF_REATTACH_PROVIDERS=...");
    let json: serde_json::Value = serde_json::from_str(&reattach).unwrap();
    assert_eq!(json["example.local/test/tfptest"]["ProtocolVersion"], 6);

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::write(
        tmp.path().join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    tfptest = {{ source = \"example.local/test/tfptest\" }}\n  }}\n}}\n\
             provider \"tfptest\" {{\n  dir = \"{}\"\n}}\n\
             resource \"tfptest_file\" \"a\" {{\n  name = \"a\"\n  content = \"attached\"\n}}\n",
            store.display()
        ),
    )
    .unwrap();
    let out = Command::new(terraform)
        .args(["apply", "-auto-approve", "-no-color"])
        .current_dir(tmp.path())
        .env("TF_REATTACH_PROVIDERS", &reattach)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        store.join("a.json").exists(),
        "the attached process did the work"
    );
    // Still serving after Terraform finished (it must not stop the debug server).
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        child.try_wait().unwrap().is_none(),
        "debug server kept running"
    );
    // Ctrl-C ends it.
    unsafe_sigint(child.id());
    let status = wait_timeout(&mut child, Duration::from_secs(10)).expect("exits after SIGINT");
    assert!(status.success(), "{status:?}");
}

fn unsafe_sigint(pid: u32) {
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

fn wait_timeout(child: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + d;
    while std::time::Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn sigterm_shuts_down_gracefully_and_removes_the_socket() {
    let mut p = start(&[]);
    let sock = std::path::PathBuf::from(p.line.split('|').nth(3).unwrap());
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let status = wait_timeout(&mut p.child, Duration::from_secs(10)).expect("exits on SIGTERM");
    assert!(status.success());
    assert!(!sock.exists(), "socket cleaned up");
    // SIGINT alone is ignored outside debug mode (Terraform sends StopProvider instead).
    let mut p = start(&[]);
    let _ = Command::new("kill")
        .args(["-INT", &p.child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        p.child.try_wait().unwrap().is_none(),
        "SIGINT must not kill the plugin"
    );
}
