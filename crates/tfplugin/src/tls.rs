//! AutoMTLS: the server certificate we generate and the verifier that
//! *requires* Terraform's client certificate (go-plugin uses
//! RequireAndVerifyClientCert; tf-provider's optional auth was a defect).
//!
//! Terraform's client certificate is a self-signed ECDSA P-521 CA certificate
//! passed in `PLUGIN_CLIENT_CERT`. Two consequences shape this module:
//! * webpki rejects a CA certificate used as an end entity, so the chain is
//!   checked by pinning: the presented certificate must be byte-identical to
//!   the one Terraform gave us in the environment.
//! * ring cannot verify P-521 signatures, so the handshake signature of a
//!   P-521 key is checked with the pure-Rust `p521` crate; every other scheme
//!   goes through rustls' own verification.

use std::sync::Arc;

use base64::Engine;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// A generated server identity: the rustls config and the DER certificate for
/// the handshake line.
pub(crate) struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub cert_der: Vec<u8>,
}

/// Builds the TLS server config for AutoMTLS from the PEM client certificate.
pub(crate) fn auto_mtls(client_cert_pem: &str) -> Result<ServerTls, String> {
    let pinned = pem_certificates(client_cert_pem)?;
    if pinned.is_empty() {
        return Err("PLUGIN_CLIENT_CERT holds no certificate".into());
    }
    // P-256 keys generate in well under a millisecond (start-up budget 5 ms).
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| format!("certificate parameters: {e}"))?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyAgreement,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("key generation: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("self-signing: {e}"))?;
    let cert_der = cert.der().to_vec();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedClientVerifier {
        pinned,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| format!("TLS config: {e}"))?;
    // gRPC requires HTTP/2 negotiated by ALPN.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        cert_der,
    })
}

/// Extracts the DER certificates of a PEM bundle.
pub(crate) fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let b = body.take().ok_or("END without BEGIN in PEM")?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| format!("invalid base64 in PEM: {e}"))?;
            out.push(CertificateDer::from(der));
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    Ok(out)
}

#[derive(Debug)]
struct PinnedClientVerifier {
    pinned: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientVerifier {
    fn verify(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if dss.scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            return verify_p521(message, cert, dss.signature());
        }
        if tls13 {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        } else {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }
    }
}

fn verify_p521(
    message: &[u8],
    cert: &CertificateDer<'_>,
    signature: &[u8],
) -> Result<HandshakeSignatureValid, rustls::Error> {
    use p521::ecdsa::signature::Verifier;
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadSignature);
    let point = spki_public_key(cert.as_ref()).ok_or_else(bad)?;
    let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| bad())?;
    let sig = p521::ecdsa::Signature::from_der(signature).map_err(|_| bad())?;
    key.verify(message, &sig).map_err(|_| bad())?;
    Ok(HandshakeSignatureValid::assertion())
}

/// Reads one DER TLV at `pos`: returns (tag, content range end, content start).
fn der_tlv(buf: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *buf.get(pos)?;
    let first = *buf.get(pos + 1)? as usize;
    let (len, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(pos + 2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let start = pos + hdr;
    let end = start.checked_add(len)?;
    if end > buf.len() {
        return None;
    }
    Some((tag, end, start))
}

/// The subjectPublicKey bits (a SEC1 point for EC keys) of an X.509 certificate.
fn spki_public_key(cert: &[u8]) -> Option<&[u8]> {
    // Certificate ::= SEQUENCE { tbsCertificate, ... }
    let (_, _, cert_body) = der_tlv(cert, 0)?;
    let (_, _, tbs_body) = der_tlv(cert, cert_body)?;
    let mut pos = tbs_body;
    // Optional [0] version.
    let (tag, end, _) = der_tlv(cert, pos)?;
    if tag == 0xa0 {
        pos = end;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        let (_, end, _) = der_tlv(cert, pos)?;
        pos = end;
    }
    // subjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }
    let (_, _, spki_body) = der_tlv(cert, pos)?;
    let (_, alg_end, _) = der_tlv(cert, spki_body)?;
    let (tag, bits_end, bits_start) = der_tlv(cert, alg_end)?;
    if tag != 0x03 || bits_start >= bits_end {
        return None;
    }
    // Skip the unused-bits byte.
    Some(&cert[bits_start + 1..bits_end])
}

impl ClientCertVerifier for PinnedClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut s = self.algorithms.supported_schemes();
        s.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        s
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spki_of_generated_cert_is_an_uncompressed_point() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let point = spki_public_key(cert.der()).unwrap();
        assert_eq!(point, key.public_key_raw());
    }

    #[test]
    fn p521_signature_verifies_and_tampering_fails() {
        use p521::ecdsa::signature::Signer;
        // rcgen on ring cannot make P-521 keys, so wrap a p521 key in a
        // synthetic certificate with the same DER layout.
        let sk = p521::ecdsa::SigningKey::random(&mut rand_core_os());
        let vk = p521::ecdsa::VerifyingKey::from(&sk);
        let point = vk.to_encoded_point(false);
        let cert = synthetic_cert(point.as_bytes());
        let msg = b"handshake transcript";
        let sig: p521::ecdsa::Signature = sk.sign(msg);
        let der = sig.to_der();
        let cert = CertificateDer::from(cert);
        assert!(verify_p521(msg, &cert, der.as_bytes()).is_ok());
        assert!(verify_p521(b"other", &cert, der.as_bytes()).is_err());
    }

    fn rand_core_os() -> p521::elliptic_curve::rand_core::OsRng {
        p521::elliptic_curve::rand_core::OsRng
    }

    /// A minimal DER shape with the fields spki_public_key walks over.
    fn synthetic_cert(point: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 0x80 {
                v.push(body.len() as u8);
            } else if body.len() < 0x100 {
                v.extend_from_slice(&[0x81, body.len() as u8]);
            } else {
                v.extend_from_slice(&[0x82, (body.len() >> 8) as u8, body.len() as u8]);
            }
            v.extend_from_slice(body);
            v
        }
        let mut bits = vec![0u8];
        bits.extend_from_slice(point);
        let spki = tlv(
            0x30,
            &[tlv(0x30, &[0x06, 0x01, 0x00]), tlv(0x03, &bits)].concat(),
        );
        let tbs = tlv(
            0x30,
            &[
                tlv(0xa0, &tlv(0x02, &[2])),
                tlv(0x02, &[1]),
                tlv(0x30, &[]),
                tlv(0x30, &[]),
                tlv(0x30, &[]),
                tlv(0x30, &[]),
                spki,
            ]
            .concat(),
        );
        tlv(0x30, &[tbs, tlv(0x30, &[]), tlv(0x03, &[0])].concat())
    }
}
