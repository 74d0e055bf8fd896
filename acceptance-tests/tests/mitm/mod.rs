//! A man-in-the-middle for gRPC over h2c: forwards every call to Omni, changing its signature
//! headers on the way, so the tests can show what the provider reports when a request is
//! tampered with in transit or signed with a clock that is off.

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use omni_client::ServiceAccountKey;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to each request.
pub enum Mode {
    /// Re-format the signed JSON payload header (same meaning, other bytes than were signed).
    TamperPayload,
    /// Sign the call again, correctly, but as a client whose clock is `skew_secs` behind.
    ClockBehind {
        /// The key the client itself uses.
        key: ServiceAccountKey,
        /// How far behind the clock is.
        skew_secs: u64,
    },
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:<port>` to give the provider as its endpoint.
    pub endpoint: String,
    _rt: tokio::runtime::Runtime,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Starts a proxy in front of `upstream` (an `http://host:port` endpoint).
pub fn start(upstream: &str, mode: Mode) -> anyhow::Result<Proxy> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let upstream = upstream.trim_start_matches("http://").to_string();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let mode = Arc::new(mode);
    rt.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (up, mode) = (upstream.clone(), mode.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req| forward(req, up.clone(), mode.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(Proxy { endpoint, _rt: rt })
}

async fn forward(
    mut req: Request<Incoming>,
    upstream: String,
    mode: Arc<Mode>,
) -> Result<Response<Incoming>, BoxError> {
    match &*mode {
        Mode::TamperPayload => {
            let payload = req
                .headers()
                .get("x-sidero-payload")
                .and_then(|v| v.to_str().ok())
                .map(|p| p.replacen("{\"headers\"", "{ \"headers\"", 1));
            if let Some(p) = payload {
                req.headers_mut().insert("x-sidero-payload", p.parse()?);
            }
        }
        Mode::ClockBehind { key, skew_secs } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let mut md = tonic::metadata::MetadataMap::from_headers(req.headers().clone());
            omni_client::auth::sign_metadata(key, &mut md, req.uri().path(), now - skew_secs)?;
            *req.headers_mut() = md.into_headers();
        }
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = format!("http://{upstream}{path}").parse()?;
    let tcp = TcpStream::connect(&upstream).await?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}
