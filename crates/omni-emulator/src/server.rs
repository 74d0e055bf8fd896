//! The single listener: native gRPC, the `/api/` JSON gateway and the Image Factory paths
//! (omni-api.md §1.1, §11), with signature checks and fault injection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::Status;
use tower::ServiceExt;

use crate::auth::Identity;
use crate::core::Core;

/// Fault injection settings (§9 "optional realism" plus the brief's `--fail-rate`).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Share of calls answered UNAVAILABLE (half before, half after applying the call).
    pub fail_rate: f64,
    /// Added latency per call.
    pub latency: Duration,
    /// RNG seed.
    pub seed: u64,
}

/// Routes and shared state of the HTTP front.
pub struct Front {
    core: Arc<Core>,
    routes: Routes,
    faults: Faults,
    rng: Mutex<rand::rngs::StdRng>,
}

/// Unary methods that change state: a fault "after" them applies the change and loses the reply.
fn is_unary_write(path: &str) -> bool {
    matches!(
        path,
        "/cosi.resource.State/Create"
            | "/cosi.resource.State/Update"
            | "/cosi.resource.State/Destroy"
            | "/cosi.resource.State/Teardown"
            | "/omni.resources.ResourceService/Create"
            | "/omni.resources.ResourceService/Update"
            | "/omni.resources.ResourceService/Delete"
            | "/omni.resources.ResourceService/Teardown"
    )
}

/// Where to fail a call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Before,
    After,
}

impl Front {
    /// Builds the front over a core and the tonic routes of all gRPC services.
    pub fn new(core: Arc<Core>, routes: Routes, faults: Faults) -> Arc<Front> {
        let rng = rand::rngs::StdRng::seed_from_u64(faults.seed ^ 0x5eed_fa17);
        Arc::new(Front {
            core,
            routes,
            faults,
            rng: Mutex::new(rng),
        })
    }

    fn pick_fault(&self, path: &str) -> Fault {
        if self.faults.fail_rate <= 0.0 {
            return Fault::None;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.gen::<f64>() >= self.faults.fail_rate {
            return Fault::None;
        }
        if is_unary_write(path) && rng.gen_bool(0.5) {
            Fault::After
        } else {
            Fault::Before
        }
    }

    /// Verifies the signature of a gRPC call; `invalid signature` on any failure (§2.3).
    pub fn authenticate(&self, path: &str, headers: &http::HeaderMap) -> Result<Identity, Status> {
        let meta = |name: &str| -> Vec<String> {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_string))
                .collect()
        };
        crate::auth::verify(&self.core.keys, path, &meta, crate::model::Time::now().secs)
            .map_err(|_| Status::unauthenticated("invalid signature"))
    }

    /// Authenticates and dispatches one gRPC request to the tonic services.
    pub async fn grpc(&self, mut req: Request<Body>) -> Response<Body> {
        let path = req.uri().path().to_string();
        match self.authenticate(&path, req.headers()) {
            Ok(id) => {
                req.extensions_mut().insert(id);
            }
            Err(st) => return st.into_http(),
        }
        // Omni's grpc-go server compresses a reply only with the compressor of the request
        // (omni-api.md §1.1, "Default call options": gzip requests get gzip replies). tonic would
        // compress whenever the client merely accepts gzip, so hide that from it.
        if !req.headers().contains_key("grpc-encoding") {
            req.headers_mut().remove("grpc-accept-encoding");
        }
        match self.routes.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// Entry point of every HTTP request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        if !self.faults.latency.is_zero() {
            tokio::time::sleep(self.faults.latency).await;
        }
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        let path = req.uri().path().to_string();
        if is_grpc {
            let fault = self.pick_fault(&path);
            if fault == Fault::Before {
                return Ok(Status::unavailable("injected fault: service unavailable").into_http());
            }
            let resp = self.grpc(req.map(Body::new)).await;
            if fault == Fault::After {
                // The handler has run to completion (unary tonic futures resolve after it), so
                // the write is applied; the client only loses the reply.
                drop(resp);
                return Ok(Status::unavailable("injected fault: reply lost").into_http());
            }
            return Ok(resp);
        }
        if let Some(rest) = path.strip_prefix("/api/") {
            let fault = self.pick_fault(&format!("/{rest}"));
            if fault == Fault::Before {
                return Ok(crate::gateway::error_response(&Status::unavailable(
                    "injected fault: service unavailable",
                )));
            }
            let resp = crate::gateway::handle(&self, rest, req).await;
            if fault == Fault::After {
                return Ok(crate::gateway::error_response(&Status::unavailable(
                    "injected fault: reply lost",
                )));
            }
            return Ok(resp);
        }
        let is_factory = [
            "/schematics",
            "/versions",
            "/version/",
            "/talosctl/",
            "/image/",
            "/pxe/",
            "/secureboot/",
            "/oci/",
        ]
        .iter()
        .any(|p| path.starts_with(p));
        if is_factory {
            let method = req.method().as_str().to_string();
            let path_q = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or(path);
            let body = match http_body_util::BodyExt::collect(req.into_body()).await {
                Ok(b) => b.to_bytes(),
                Err(_) => bytes::Bytes::new(),
            };
            let r = self.core.factory.handle(&method, &path_q, &body);
            let resp = Response::builder()
                .status(r.status)
                .header(http::header::CONTENT_TYPE, r.content_type)
                .body(Body::new(http_body_util::Full::new(bytes::Bytes::from(
                    r.body,
                ))))
                .unwrap_or_default();
            return Ok(resp);
        }
        Ok(Response::builder()
            .status(404)
            .header(http::header::CONTENT_TYPE, "text/plain")
            .body(Body::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"404 page not found\n"),
            )))
            .unwrap_or_default())
    }
}

/// TLS settings for the listener.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert)?))
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(key)?))?
        .ok_or_else(|| anyhow::anyhow!("no private key in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Serves connections until `stop` fires.
pub async fn serve(
    listener: TcpListener,
    front: Arc<Front>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((sock, _peer)): std::io::Result<(tokio::net::TcpStream, SocketAddr)> = accepted
        else {
            continue;
        };
        let _ = sock.set_nodelay(true);
        let front = front.clone();
        let tls = tls.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| front.clone().handle(req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acc) => {
                    let Ok(stream) = acc.accept(sock).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(sock), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        });
    }
}
