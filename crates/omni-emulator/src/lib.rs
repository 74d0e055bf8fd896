//! A local Omni for tests and demos: Omni's gRPC protocol, validation, persistence and
//! simulated controllers (omni-api.md).
//!
//! One listener serves native gRPC (`cosi.resource.State`, `management.ManagementService`,
//! `omni.resources.ResourceService`), the `/api/<package.Service>/<Method>` JSON gateway and the
//! Image Factory paths (`/schematics`, `/versions`, `/version/…`, …). Every gRPC and gateway call
//! must carry a valid `siderov1` signature of a registered service-account key.
//!
//! Data directory layout: `endpoint` (URL, written atomically once listening),
//! `service-account.key` (Admin key in `OMNI_SERVICE_ACCOUNT_KEY` format), `keys.d/` (one JSON
//! file per accepted public key; re-read on an unknown fingerprint), `state/` (snapshot + fsync'd
//! append-only log; compacted at start).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let emu = omni_emulator::Emulator::builder().machines(5).start().await?;
//! println!("{} {}", emu.endpoint(), emu.service_account_key().len());
//! emu.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod controllers;
pub mod convert;
pub mod core;
pub mod gateway;
pub mod keys;
pub mod mgmt;
pub mod model;
pub mod query;
pub mod resource_svc;
pub mod seed;
pub mod server;
pub mod signer;
pub mod store;
pub mod types;
pub mod validate;
pub mod wal;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;

use crate::core::Core;
use crate::keys::{KeyRing, Role};
use crate::store::Store;

/// Entry point: `Emulator::builder()`.
pub struct Emulator;

impl Emulator {
    /// A builder with the defaults of the binary.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }
}

/// Settings of one emulator instance.
#[derive(Clone, Debug)]
pub struct EmulatorBuilder {
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    machines: usize,
    arm64_machines: usize,
    tls: Option<(PathBuf, PathBuf)>,
    step_delay: Duration,
    fail_rate: f64,
    latency: Duration,
    seed: u64,
    read_lag: Duration,
    catalogue: Option<seed::Catalogue>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        EmulatorBuilder {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: None,
            machines: 0,
            arm64_machines: 0,
            tls: None,
            step_delay: Duration::from_millis(200),
            fail_rate: 0.0,
            latency: Duration::ZERO,
            seed: 0,
            read_lag: Duration::ZERO,
            catalogue: None,
        }
    }
}

impl EmulatorBuilder {
    /// Listen address (default `127.0.0.1:0`).
    pub fn listen(mut self, a: SocketAddr) -> Self {
        self.listen = a;
        self
    }
    /// Persistent data directory (default: a temporary directory removed on drop).
    pub fn data_dir(mut self, d: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(d.into());
        self
    }
    /// Number of simulated amd64 machines.
    pub fn machines(mut self, n: usize) -> Self {
        self.machines = n;
        self
    }
    /// Number of simulated arm64 machines.
    pub fn arm64_machines(mut self, n: usize) -> Self {
        self.arm64_machines = n;
        self
    }
    /// Serve TLS with this PEM certificate chain and key.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls = Some((cert.into(), key.into()));
        self
    }
    /// Delay between controller steps (default 200 ms).
    pub fn step_delay(mut self, d: Duration) -> Self {
        self.step_delay = d;
        self
    }
    /// Share of gRPC calls answered UNAVAILABLE.
    pub fn fail_rate(mut self, p: f64) -> Self {
        self.fail_rate = p;
        self
    }
    /// Latency added to every call.
    pub fn latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }
    /// Seed for machine IDs, hardware and fault injection.
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    /// Delay of the eventually consistent read cache (§1.9).
    pub fn read_lag(mut self, d: Duration) -> Self {
        self.read_lag = d;
        self
    }

    /// Serve this version catalogue instead of talos-machinery's (tests pin versions with it).
    pub fn catalogue(mut self, c: seed::Catalogue) -> Self {
        self.catalogue = Some(c);
        self
    }

    /// Opens the state, seeds the catalogue, starts controllers and the listener.
    pub async fn start(self) -> anyhow::Result<RunningEmulator> {
        let (dir, tmp) = match &self.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir().context("creating a temporary data directory")?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = Store::open(&dir.join("state"), self.read_lag).context("opening the state")?;
        let ring = Arc::new(KeyRing::open(&dir)?);
        let sa_key = ensure_service_account(&dir, &ring)?;

        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("binding {}", self.listen))?;
        let addr = listener.local_addr()?;
        let tls = match &self.tls {
            Some((c, k)) => Some(server::tls_acceptor(c, k)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = format!("{scheme}://{addr}");

        let core = Arc::new(Core {
            store: store.clone(),
            keys: ring,
            factory: talos_machinery::factory::Factory::new(),
            endpoint: OnceLock::new(),
            step_delay: self.step_delay,
        });
        let _ = core.endpoint.set(endpoint.clone());
        let catalogue = self
            .catalogue
            .clone()
            .unwrap_or_else(seed::Catalogue::official);
        seed::seed(
            &store,
            &catalogue,
            &endpoint,
            self.machines,
            self.arm64_machines,
            self.seed,
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding the catalogue: {e}"))?;

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = controllers::start(core.clone(), stop_rx.clone());

        let routes = tonic::service::Routes::new(
            omni_api::cosi::resource::state_server::StateServer::new(core::StateService::new(
                core.clone(),
            ))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(32 << 20),
        )
        .add_service(
            omni_api::management::management_service_server::ManagementServiceServer::new(
                mgmt::Management::new(core.clone()),
            )
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(32 << 20),
        )
        .add_service(
            omni_api::omni::resources::resource_service_server::ResourceServiceServer::new(
                resource_svc::Resources::new(core.clone()),
            )
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(32 << 20),
        )
        .prepare();
        let front = server::Front::new(
            core.clone(),
            routes,
            server::Faults {
                fail_rate: self.fail_rate,
                latency: self.latency,
                seed: self.seed,
            },
        );
        tasks.push(tokio::spawn(server::serve(listener, front, tls, stop_rx)));

        keys::write_atomic(&dir.join("endpoint"), endpoint.as_bytes())?;
        Ok(RunningEmulator {
            endpoint,
            sa_key,
            data_dir: dir,
            stop: stop_tx,
            tasks,
            core,
            _tmp: tmp,
        })
    }
}

/// Loads `service-account.key` (creating it on first start) and makes sure its public key is
/// registered. The key is an Admin key, so it can manage service accounts too.
fn ensure_service_account(dir: &Path, ring: &KeyRing) -> anyhow::Result<String> {
    let path = dir.join("service-account.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim().to_string();
        let (name, secret) = keys::parse_service_account_key(&text)?;
        let fp = keys::fingerprint_hex(&secret.primary_key);
        if ring.lookup(&fp).is_none() {
            let public = secret
                .to_public_key()
                .to_armored_string(pgp::composed::ArmorOptions::default())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let now = model::Time::now().secs;
            ring.add(keys::KeyEntry {
                name,
                fingerprint: fp,
                role: Role::Admin,
                public_key: public,
                expiration: now + keys::DEFAULT_TTL_SECS,
                created: now,
            })?;
        }
        return Ok(text);
    }
    let g = keys::generate("omni-emulator", Role::Admin, keys::DEFAULT_TTL_SECS)?;
    ring.add(g.entry.clone())?;
    keys::write_atomic(&path, g.service_account_key.as_bytes())?;
    Ok(g.service_account_key)
}

/// A started emulator. Dropping it without `shutdown` leaves the tasks running until the
/// runtime ends.
pub struct RunningEmulator {
    endpoint: String,
    sa_key: String,
    data_dir: PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    core: Arc<Core>,
    _tmp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("endpoint", &self.endpoint)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `http://127.0.0.1:<port>` (or `https://…` with TLS).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// The Admin service-account key (`OMNI_SERVICE_ACCOUNT_KEY` format).
    pub fn service_account_key(&self) -> &str {
        &self.sa_key
    }
    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// Direct access to the store (for tests).
    pub fn store(&self) -> &Arc<Store> {
        &self.core.store
    }
    /// Creates an additional service-account key with the given role.
    pub fn create_service_account(&self, name: &str, role: Role) -> anyhow::Result<String> {
        let g = keys::generate(name, role, keys::DEFAULT_TTL_SECS)?;
        self.core.keys.add(g.entry.clone())?;
        Ok(g.service_account_key)
    }
    /// Stops the listener and the controllers.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}
