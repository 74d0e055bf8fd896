//! A small HTTP/1.1 client for the Talos Image Factory API (image-factory-and-talos.md §3.1).
//!
//! One connection per request (the provider makes a handful of factory calls per run, so
//! pooling would buy nothing), every request bounded by a timeout, TLS verified against the
//! system trust store (as omni-client does for Omni). Every error names the URL it was about, so
//! "factory down" reads as such in Terraform's output.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tfplugin::{AttributePath, Diagnostic, Diagnostics};
use tokio::io::{AsyncRead, AsyncWrite};

/// Default bound on one factory request (connect + TLS + send + full body). Omni gives the
/// factory 30 s for `POST /schematics` (§5.2); the read-only endpoints answer from a cache.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body accepted (catalogues are a few hundred KiB).
const MAX_BODY: usize = 16 << 20;

/// What went wrong talking to the factory.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// The base URL cannot be used.
    #[error("invalid Image Factory URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Nothing answered (connection refused, DNS, TLS).
    #[error("the Image Factory at {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The request did not complete in time.
    #[error("the Image Factory at {url} did not answer within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The bound.
        timeout: Duration,
    },
    /// The factory answered with an error status; `body` is its text/plain reason.
    #[error("the Image Factory answered {method} {url} with {status}: {body}")]
    Status {
        /// Request method.
        method: String,
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Response text, trimmed.
        body: String,
    },
    /// The answer was not what the API documents.
    #[error("unexpected answer from the Image Factory at {url}: {reason}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl FactoryError {
    /// The HTTP status, when the factory answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            FactoryError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A diagnostic for a failed factory call; `action` says what we were doing.
pub fn factory_error(action: &str, err: &FactoryError) -> Diagnostics {
    factory_diagnostic(action, err).into()
}

/// Like [`factory_error`], pointing at an attribute.
pub fn factory_error_at(action: &str, err: &FactoryError, path: AttributePath) -> Diagnostics {
    factory_diagnostic(action, err).at(path).into()
}

fn factory_diagnostic(action: &str, err: &FactoryError) -> Diagnostic {
    let (summary, hint) = match err {
        FactoryError::Unreachable { .. } | FactoryError::Timeout { .. } => (
            "Image Factory unreachable",
            "\n\nCheck the provider's `image_factory_url` and the network.",
        ),
        FactoryError::InvalidUrl { .. } => (
            "Invalid Image Factory URL",
            "\n\nSet the provider's `image_factory_url` to an http:// or https:// URL.",
        ),
        FactoryError::Status { status: 400, .. } => ("Image Factory rejected the request", ""),
        _ => ("Image Factory request failed", ""),
    };
    Diagnostic::error(summary, format!("Error {action}: {err}{hint}"))
}

/// Answer of `POST /schematics` (§3.1).
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedSchematic {
    /// The factory's ID.
    pub id: String,
    /// The canonical YAML (factory ≥ v1.3.0 only).
    #[serde(default)]
    pub schematic: Option<String>,
}

/// One entry of `GET /version/{v}/extensions/official`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionInfo {
    /// e.g. `siderolabs/iscsi-tools`.
    pub name: String,
    /// Image reference.
    #[serde(default)]
    pub r#ref: String,
    /// Image digest.
    #[serde(default)]
    pub digest: String,
    /// Author.
    #[serde(default)]
    pub author: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// One entry of `GET /version/{v}/overlays/official`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayInfo {
    /// e.g. `rpi_generic`.
    pub name: String,
    /// e.g. `siderolabs/sbc-raspberrypi`.
    #[serde(default)]
    pub image: String,
    /// Image reference.
    #[serde(default)]
    pub r#ref: String,
    /// Image digest.
    #[serde(default)]
    pub digest: String,
}

/// Client for one factory base URL.
#[derive(Clone)]
pub struct FactoryClient {
    base: String,
    timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for FactoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactoryClient")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl FactoryClient {
    /// A client for `base_url` (e.g. `https://factory.talos.dev`; a path prefix is kept).
    pub fn new(base_url: &str) -> Result<Self, FactoryError> {
        let base = base_url.trim().trim_end_matches('/').to_string();
        let invalid = |reason: &str| FactoryError::InvalidUrl {
            url: base_url.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = base.parse().map_err(|e| invalid(&format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("http") => None,
            Some("https") => Some(tls_connector().map_err(|e| invalid(&e))?),
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        Ok(FactoryClient {
            base,
            timeout: DEFAULT_TIMEOUT,
            tls,
        })
    }

    /// Changes the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /schematics`: registers a schematic, returns the factory's ID (§3.1).
    pub async fn create_schematic(&self, body: &str) -> Result<CreatedSchematic, FactoryError> {
        let (url, status, bytes) = self
            .send(Method::POST, "/schematics", Some(body.as_bytes().to_vec()))
            .await?;
        let created: CreatedSchematic = decode_json(&url, status, &bytes, "POST")?;
        if created.id.len() != 64 || !created.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(FactoryError::Decode {
                url,
                reason: format!("{:?} is not a schematic ID", created.id),
            });
        }
        Ok(created)
    }

    /// `GET /schematics/{id}`: the stored canonical YAML, `None` on 404 (§3.1).
    pub async fn get_schematic(&self, id: &str) -> Result<Option<String>, FactoryError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            // Not a path segment we can send; no schematic can have this ID.
            return Ok(None);
        }
        let (url, status, bytes) = self
            .send(Method::GET, &format!("/schematics/{id}"), None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check_status(&url, status, &bytes, "GET")?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| FactoryError::Decode {
                url,
                reason: e.to_string(),
            })
    }

    /// `GET /versions`: Talos versions, `v`-prefixed, ascending (§3.2).
    pub async fn versions(&self) -> Result<Vec<String>, FactoryError> {
        let (url, status, bytes) = self.send(Method::GET, "/versions", None).await?;
        decode_json(&url, status, &bytes, "GET")
    }

    /// `GET /version/{v}/extensions/official`.
    pub async fn extensions(
        &self,
        talos_version: &str,
    ) -> Result<Vec<ExtensionInfo>, FactoryError> {
        let path = format!("/version/{}/extensions/official", segment(talos_version));
        let (url, status, bytes) = self.send(Method::GET, &path, None).await?;
        decode_json(&url, status, &bytes, "GET")
    }

    /// `GET /version/{v}/overlays/official`.
    pub async fn overlays(&self, talos_version: &str) -> Result<Vec<OverlayInfo>, FactoryError> {
        let path = format!("/version/{}/overlays/official", segment(talos_version));
        let (url, status, bytes) = self.send(Method::GET, &path, None).await?;
        decode_json(&url, status, &bytes, "GET")
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(String, StatusCode, Bytes), FactoryError> {
        let url = format!("{}{}", self.base, path);
        let fut = self.exchange(method.clone(), &url, body);
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok((status, bytes))) => {
                tracing::debug!(method = %method, url = url.as_str(), status = status.as_u16(), "image factory call");
                Ok((url, status, bytes))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(FactoryError::Timeout {
                url,
                timeout: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), FactoryError> {
        let unreachable = |reason: String| FactoryError::Unreachable {
            url: url.to_string(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|e| FactoryError::InvalidUrl {
            url: url.to_string(),
            reason: format!("{e}"),
        })?;
        let host = uri.host().unwrap_or_default().to_string();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| host.clone());
        // A bracketed IPv6 literal must be connected to without the brackets.
        let connect_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tcp = tokio::net::TcpStream::connect((connect_host.as_str(), port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let has_body = body.is_some();
        let mut builder = Request::builder()
            .method(method)
            .uri(
                uri.path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
                    .to_string(),
            )
            .header(http::header::HOST, authority)
            .header(
                http::header::USER_AGENT,
                concat!("terraform-provider-omni/", env!("CARGO_PKG_VERSION")),
            );
        if has_body {
            builder = builder.header(http::header::CONTENT_TYPE, "application/yaml");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| unreachable(e.to_string()))?;
        match &self.tls {
            None => round_trip(tcp, req).await.map_err(unreachable),
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(connect_host.clone())
                    .map_err(|e| unreachable(format!("invalid TLS server name: {e}")))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unreachable(format!("TLS: {e}")))?;
                round_trip(stream, req).await.map_err(unreachable)
            }
        }
    }
}

/// A version as a path segment: only semver characters pass, so user input cannot change the
/// path (the factory answers a malformed version with an error, which we report).
fn segment(v: &str) -> String {
    v.trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        .collect()
}

async fn round_trip<IO>(io: IO, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    // The connection task ends when the response is read and the sender dropped.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the response: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn check_status(
    url: &str,
    status: StatusCode,
    body: &[u8],
    method: &str,
) -> Result<(), FactoryError> {
    if status.is_success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(body).trim().to_string();
    if text.len() > 2000 {
        let mut cut = 2000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    Err(FactoryError::Status {
        method: method.to_string(),
        url: url.to_string(),
        status: status.as_u16(),
        body: text,
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(
    url: &str,
    status: StatusCode,
    body: &[u8],
    method: &str,
) -> Result<T, FactoryError> {
    check_status(url, status, body, method)?;
    serde_json::from_slice(body).map_err(|e| FactoryError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        return Err("no trusted CA certificates found in the system store".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}

/// The factory client for the configured provider.
pub fn client(ctx: &tfplugin::Ctx) -> tfplugin::Result<FactoryClient> {
    let url = &super::configured(ctx)?.settings.image_factory_url;
    FactoryClient::new(url).map_err(|e| {
        Diagnostic::error("Invalid Image Factory URL", e.to_string())
            .at(AttributePath::new("image_factory_url"))
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use talos_machinery::factory::Factory;

    /// Serves the in-memory factory model over real HTTP/1.1 on 127.0.0.1:0.
    async fn serve(factory: Arc<Factory>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let f = factory.clone();
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let f = f.clone();
                            async move {
                                let method = req.method().to_string();
                                let path = req
                                    .uri()
                                    .path_and_query()
                                    .map(|p| p.as_str().to_string())
                                    .unwrap_or_default();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let r = f.handle(&method, &path, &body);
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(r.status)
                                        .header("content-type", r.content_type)
                                        .body(Full::new(Bytes::from(r.body)))
                                        .unwrap(),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}")
    }

    const VANILLA: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[tokio::test]
    async fn schematic_round_trip_and_404() {
        let factory = Arc::new(Factory::new());
        let c = FactoryClient::new(&format!("{}/", serve(factory.clone()).await)).unwrap();
        let created = c.create_schematic("customization: {}\n").await.unwrap();
        assert_eq!(created.id, VANILLA);
        assert_eq!(created.schematic.as_deref(), Some("customization: {}\n"));
        assert_eq!(
            c.get_schematic(VANILLA).await.unwrap().as_deref(),
            Some("customization: {}\n")
        );
        factory.forget_schematic(VANILLA);
        assert_eq!(c.get_schematic(VANILLA).await.unwrap(), None);
        assert_eq!(c.get_schematic("../versions").await.unwrap(), None);
    }

    #[tokio::test]
    async fn rejection_carries_the_factory_reason() {
        let c = FactoryClient::new(&serve(Arc::new(Factory::new())).await).unwrap();
        let e = c.create_schematic("something: 1\n").await.unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert!(
            e.to_string()
                .contains("field something not found in type schematic.Schematic"),
            "{e}"
        );
        let d = factory_error("registering", &e);
        assert_eq!(d.0[0].summary, "Image Factory rejected the request");
    }

    #[tokio::test]
    async fn catalogues() {
        let c = FactoryClient::new(&serve(Arc::new(Factory::new())).await).unwrap();
        let v = c.versions().await.unwrap();
        assert_eq!(v[0], "v1.2.0");
        let ext = c.extensions("v1.13.9").await.unwrap();
        assert!(ext.iter().any(|e| e.name == "siderolabs/iscsi-tools"));
        let ov = c.overlays("1.7.0").await.unwrap();
        assert_eq!(ov[0].name, "rpi_generic");
        let e = c.extensions("v1.99.0").await.unwrap_err();
        assert_eq!(e.status(), Some(404));
        assert!(
            e.to_string().contains("version v1.99.0 is not available"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn factory_down_names_the_url() {
        // Bind then drop: nothing listens on that port any more.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = FactoryClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = c.versions().await.unwrap_err();
        assert!(matches!(e, FactoryError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains(&format!("http://127.0.0.1:{port}/versions")),
            "{e}"
        );
        assert_eq!(
            factory_error("listing", &e).0[0].summary,
            "Image Factory unreachable"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accept and hold the connection without answering.
        let hold = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let c = FactoryClient::new(&format!("http://{addr}"))
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        let e = c.versions().await.unwrap_err();
        assert!(matches!(e, FactoryError::Timeout { .. }), "{e:?}");
        hold.abort();
    }

    #[test]
    fn bad_urls() {
        assert!(FactoryClient::new("ftp://x").is_err());
        assert!(FactoryClient::new("factory.talos.dev").is_err());
        assert!(FactoryClient::new("https://factory.talos.dev").is_ok());
        assert_eq!(segment("v1.7.0/../x?y"), "v1.7.0..xy");
    }
}
