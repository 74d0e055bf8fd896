//! The connection to Omni: endpoint, TLS, signing, compression, message limits, retries.

use std::{
    fmt,
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use omni_api::{
    cosi::resource::state_client::StateClient,
    management::management_service_client::ManagementServiceClient,
    omni::resources::resource_service_client::ResourceServiceClient,
};
use rand::Rng;
use tonic::{
    codec::CompressionEncoding,
    service::interceptor::InterceptedService,
    transport::{Channel, ClientTlsConfig},
};

use crate::{
    auth::{RequestSigner, ServiceAccountKey},
    endpoint::{Endpoint, Transport},
    error::{Error, Result},
};

/// Omni's gRPC message limit, 32 MiB (omni-api.md §1.1).
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;
/// Keepalive ping interval of the Go client (omni-api.md §1.1).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);

pub(crate) type SignedChannel = InterceptedService<Channel, RequestSigner>;

/// Backoff for transient failures (UNAVAILABLE, DEADLINE_EXCEEDED) and version conflicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of one delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `retry` (0-based): exponential, capped, with jitter in
    /// [d/2, d] so that many clients do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }
}

/// Bytes that must never be printed (kubeconfigs, talosconfigs). `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Consumes the wrapper.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// Settings for [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    endpoint: String,
    key: Option<ServiceAccountKey>,
    ca_pem: Option<Vec<u8>>,
    insecure_skip_tls_verify: bool,
    retry: RetryPolicy,
    gitops_tool: Option<String>,
    connect_timeout: Duration,
    gzip_requests: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("key", &self.key)
            .field("ca_bundle", &self.ca_pem.is_some())
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("retry", &self.retry)
            .field("gitops_tool", &self.gitops_tool)
            .field("gzip_requests", &self.gzip_requests)
            .finish()
    }
}

impl ClientBuilder {
    /// Signs every call with this service-account key.
    pub fn service_account(mut self, key: ServiceAccountKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Loads the key from `SIDERO_SERVICE_ACCOUNT_KEY` / `OMNI_SERVICE_ACCOUNT_KEY`.
    pub fn service_account_from_env(self) -> Result<Self> {
        Ok(self.service_account(ServiceAccountKey::from_env()?))
    }

    /// Trusts this PEM CA bundle in addition to the system roots.
    pub fn ca_bundle_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Disables TLS certificate verification. Opt-in, for test installations only.
    pub fn insecure_skip_tls_verify(mut self, skip: bool) -> Self {
        self.insecure_skip_tls_verify = skip;
        self
    }

    /// Retry policy for transient failures and conflicts.
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Stamps `omni.sidero.dev/managed-by-gitops-tools: <tool>` on every Create and Update, so
    /// Omni's UI warns before manual edits (omni-api.md §3.2, §8).
    pub fn managed_by(mut self, tool: impl Into<String>) -> Self {
        self.gitops_tool = Some(tool.into());
        self
    }

    /// TCP/TLS connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Gzip-compresses every request, as Omni's Go client does (omni-api.md §1.1: optional;
    /// Omni then answers gzip too). Off by default: Omni's requests and replies are mostly a
    /// few hundred bytes, where gzip costs CPU on both ends (about 15% of a refresh's provider
    /// CPU, measured against the emulator) and saves next to nothing on the wire. Replies are
    /// accepted compressed either way.
    pub fn gzip_requests(mut self, on: bool) -> Self {
        self.gzip_requests = on;
        self
    }

    /// Builds the client. The connection is opened lazily on the first call, so a server that
    /// is not up yet is a retryable UNAVAILABLE rather than a construction error.
    pub fn build(self) -> Result<Client> {
        let endpoint = Endpoint::parse(&self.endpoint)?;
        let mut ep = tonic::transport::Endpoint::from_shared(endpoint.dial_uri()).map_err(|e| {
            Error::InvalidEndpoint {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            }
        })?;
        ep = ep
            .connect_timeout(self.connect_timeout)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(Duration::from_secs(20));
        if endpoint.transport == Transport::Tls {
            let verifier = tls::verifier(self.ca_pem.as_deref(), self.insecure_skip_tls_verify)?;
            ep = ep
                .tls_config_with_verifier(
                    ClientTlsConfig::new().domain_name(endpoint.host.clone()),
                    verifier,
                )
                .map_err(|e| Error::Tls(e.to_string()))?;
        }
        let channel = ep.connect_lazy();
        Ok(Client {
            inner: Arc::new(Inner {
                channel,
                signer: RequestSigner::new(self.key),
                retry: self.retry,
                gitops_tool: self.gitops_tool,
                gzip_requests: self.gzip_requests,
                endpoint,
                teardown_unimplemented: AtomicBool::new(false),
                teardown_and_destroy_unimplemented: AtomicBool::new(false),
                write_epoch: AtomicU64::new(0),
            }),
        })
    }
}

struct Inner {
    channel: Channel,
    signer: RequestSigner,
    retry: RetryPolicy,
    gitops_tool: Option<String>,
    gzip_requests: bool,
    endpoint: Endpoint,
    // The Go adapter remembers that a server lacks the teardown RPCs (omni-api.md §1.5).
    teardown_unimplemented: AtomicBool,
    teardown_and_destroy_unimplemented: AtomicBool,
    // Bumped when a write through `Api` starts and again when it ends.
    write_epoch: AtomicU64,
}

/// A generated gRPC client on the signed channel: 32 MiB limits, gzip replies accepted, gzip
/// requests per [`ClientBuilder::gzip_requests`]. (The generated clients share no trait.)
macro_rules! grpc_client {
    ($client:expr, $ty:ident) => {{
        let c = $ty::new($client.signed())
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        if $client.inner.gzip_requests {
            c.send_compressed(CompressionEncoding::Gzip)
        } else {
            c
        }
    }};
}

/// A connection to one Omni instance. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .field("signer", &self.inner.signer)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client for `endpoint` (`https://…`, `http://…` or `grpc://host:port`).
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: endpoint.into(),
            key: None,
            ca_pem: None,
            insecure_skip_tls_verify: false,
            retry: RetryPolicy::default(),
            gitops_tool: None,
            connect_timeout: Duration::from_secs(20),
            gzip_requests: false,
        }
    }

    /// The parsed endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The retry policy in use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn gitops_tool(&self) -> Option<&str> {
        self.inner.gitops_tool.as_deref()
    }

    fn signed(&self) -> SignedChannel {
        InterceptedService::new(self.inner.channel.clone(), self.inner.signer.clone())
    }

    /// A raw, signed `cosi.resource.State` client.
    pub fn state(&self) -> StateClient<SignedChannel> {
        grpc_client!(self, StateClient)
    }

    /// A raw, signed `management.ManagementService` client.
    pub fn management(&self) -> ManagementServiceClient<SignedChannel> {
        grpc_client!(self, ManagementServiceClient)
    }

    /// A raw, signed `omni.resources.ResourceService` client. Calls need the `runtime: Omni`
    /// metadata (omni-api.md §11).
    pub fn resource_service(&self) -> ResourceServiceClient<SignedChannel> {
        grpc_client!(self, ResourceServiceClient)
    }

    /// Changes whenever a write through an [`crate::Api`] of this client (or a clone) starts or
    /// ends. A reader that saw the same epoch before and after a read knows that no write of
    /// this client ran meanwhile, e.g. to decide whether a List it made may still stand in for
    /// fresh Gets.
    pub fn write_epoch(&self) -> u64 {
        self.inner.write_epoch.load(Ordering::SeqCst)
    }

    /// Marks a write as running until the guard is dropped (see [`Client::write_epoch`]).
    pub(crate) fn writing(&self) -> WriteGuard<'_> {
        self.inner.write_epoch.fetch_add(1, Ordering::SeqCst);
        WriteGuard(&self.inner.write_epoch)
    }

    pub(crate) fn teardown_unimplemented(&self) -> bool {
        self.inner.teardown_unimplemented.load(Ordering::Relaxed)
    }

    pub(crate) fn set_teardown_unimplemented(&self) {
        self.inner
            .teardown_unimplemented
            .store(true, Ordering::Relaxed);
    }

    pub(crate) fn teardown_and_destroy_unimplemented(&self) -> bool {
        self.inner
            .teardown_and_destroy_unimplemented
            .load(Ordering::Relaxed)
    }

    pub(crate) fn set_teardown_and_destroy_unimplemented(&self) {
        self.inner
            .teardown_and_destroy_unimplemented
            .store(true, Ordering::Relaxed);
    }

    /// Runs an idempotent operation, retrying transient failures with backoff and jitter.
    pub(crate) async fn retry_idempotent<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let policy = &self.inner.retry;
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if e.is_transient() && attempt + 1 < policy.max_attempts => {
                    let delay = policy.delay(attempt);
                    tracing::debug!(%what, attempt, ?delay, error = %e, "retrying transient failure");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Reads the uncompressed spec text of a resource through `ResourceService/Get`, which
    /// renders compressed fields uncompressed as `spec.data` (omni-api.md §11).
    pub(crate) async fn uncompressed_data_via_json(
        &self,
        namespace: &str,
        ty: &str,
        id: &str,
    ) -> Result<String> {
        use omni_api::omni::resources::GetRequest;
        let body = self
            .retry_idempotent("ResourceService/Get", || async {
                let mut req = tonic::Request::new(GetRequest {
                    namespace: namespace.into(),
                    r#type: ty.into(),
                    id: id.into(),
                });
                req.metadata_mut().insert(
                    "runtime",
                    tonic::metadata::MetadataValue::from_static("Omni"),
                );
                Ok(self.resource_service().get(req).await?.into_inner().body)
            })
            .await?;
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Error::Decode(format!("ResourceService body is not JSON: {e}")))?;
        json.pointer("/spec/data")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| {
                Error::Decode(format!(
                    "ResourceService body of {ty}/{id} has no spec.data"
                ))
            })
    }
}

mod tls {
    //! Certificate verification: system roots plus an optional CA bundle, or (opt-in) none.

    use std::sync::Arc;

    use rustls::{
        client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        client::WebPkiServerVerifier,
        crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider},
        pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
        DigitallySignedStruct, RootCertStore, SignatureScheme,
    };

    use crate::error::Error;

    pub(super) fn verifier(
        ca_pem: Option<&[u8]>,
        skip_verify: bool,
    ) -> Result<Arc<dyn ServerCertVerifier>, Error> {
        let provider = Arc::new(ring::default_provider());
        if skip_verify {
            return Ok(Arc::new(NoVerification(provider)));
        }
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(pem) = ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| Error::Tls(format!("CA bundle: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("CA bundle: {e}")))?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::Tls("CA bundle contains no certificates".into()));
            }
        }
        if roots.is_empty() {
            return Err(Error::Tls(
                "no trusted CA certificates: none found in the system store and no CA bundle given"
                    .into(),
            ));
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map(|v| v as Arc<dyn ServerCertVerifier>)
            .map_err(|e| Error::Tls(e.to_string()))
    }

    /// Accepts any certificate but still checks handshake signatures (so the session is at
    /// least bound to the presented key).
    #[derive(Debug)]
    struct NoVerification(Arc<CryptoProvider>);

    impl ServerCertVerifier for NoVerification {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn bad_ca_bundle_is_a_clear_error() {
            let err = verifier(Some(b"not a pem"), false).expect_err("must fail");
            assert!(err.to_string().contains("CA bundle"), "{err}");
        }

        #[test]
        fn skip_verify_builds_without_roots() {
            assert!(verifier(None, true).is_ok());
        }
    }
}

/// Bumps the write epoch again when a write ends, however it ends.
pub(crate) struct WriteGuard<'a>(&'a AtomicU64);

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(800),
        };
        for _ in 0..50 {
            let d0 = p.delay(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d3 = p.delay(3);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            assert!(p.delay(30) <= Duration::from_millis(800));
        }
    }

    #[test]
    fn secret_bytes_debug_is_redacted() {
        let s = SecretBytes::new(b"apiVersion: v1\ntoken: hunter2".to_vec());
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("redacted"));
    }

    #[tokio::test]
    async fn builder_rejects_bad_endpoints_and_accepts_good_ones() {
        assert!(Client::builder("omni.example.com").build().is_err());
        let c = Client::builder("http://127.0.0.1:1").build().unwrap();
        assert_eq!(c.endpoint().port, 1);
    }
}
