//! Out-of-band access to the Omni under test, for what a person with `omnictl` would do behind
//! Terraform's back (drift, deletions) and for fixtures that have no Terraform resource yet.
//!
//! The client is built without the gitops annotation: these writes are not Terraform's.

use anyhow::{anyhow, Context, Result};
use omni_client::omni_api::specs;
use omni_client::resources::{labels, Cluster, MachineSet, TalosVersion};
use omni_client::{Api, Client, ListParams, Object, ResourceKind, ServiceAccountKey};
use std::future::Future;

use crate::Omni;

/// A signed Omni client plus the runtime it lives on (tonic channels belong to one runtime).
pub struct OutOfBand {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl OutOfBand {
    /// Connects to `omni` with the test's service account.
    pub fn new(omni: &Omni) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let key = ServiceAccountKey::from_base64(omni.service_account_key.trim())
            .map_err(|e| anyhow!("service-account key: {e}"))?;
        let client = {
            let _guard = rt.enter();
            Client::builder(omni.endpoint.clone())
                .service_account(key)
                .build()
                .context("building the out-of-band client")?
        };
        Ok(OutOfBand { rt, client })
    }

    /// Typed API for kind `K`.
    pub fn api<K: ResourceKind>(&self) -> Api<K> {
        Api::new(self.client.clone())
    }

    /// Runs a future on this client's runtime.
    pub fn run<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// The newest supported Talos version of the catalogue and its newest compatible Kubernetes
    /// version (both without `v`).
    pub fn latest_versions(&self) -> Result<(String, String)> {
        let versions = self.run(self.api::<TalosVersion>().list(&ListParams::default()))?;
        let newest = |list: Vec<String>| {
            list.into_iter()
                .filter_map(|v| semver::Version::parse(&v).ok().map(|s| (s, v)))
                .filter(|(s, _)| s.pre.is_empty())
                .max()
                .map(|(_, v)| v)
        };
        let talos = newest(
            versions
                .iter()
                .filter(|v| !v.spec.deprecated && !v.spec.unsupported)
                .map(|v| v.id().to_string())
                .collect(),
        )
        .context("no supported Talos version in the catalogue")?;
        let spec = &versions
            .iter()
            .find(|v| v.id() == talos)
            .expect("chosen from the list")
            .spec;
        let k8s = newest(spec.compatible_kubernetes_versions.clone())
            .context("no compatible Kubernetes version")?;
        Ok((talos, k8s))
    }

    /// Creates a Cluster (newest versions, no machines) and returns its Talos version.
    pub fn create_cluster(&self, name: &str) -> Result<String> {
        let (talos, k8s) = self.latest_versions()?;
        let spec = specs::ClusterSpec {
            talos_version: talos.clone(),
            kubernetes_version: k8s,
            ..Default::default()
        };
        self.run(self.api::<Cluster>().create(Object::new(name, spec)))?;
        Ok(talos)
    }

    /// Creates an empty worker machine set `<cluster>-<name>` and returns its ID.
    pub fn create_worker_set(&self, cluster: &str, name: &str) -> Result<String> {
        let id = format!("{cluster}-{name}");
        let spec = specs::MachineSetSpec {
            update_strategy: specs::machine_set_spec::UpdateStrategy::Rolling as i32,
            ..Default::default()
        };
        let obj = Object::<MachineSet>::new(id.clone(), spec)
            .with_label(labels::CLUSTER, cluster)
            .with_label(labels::ROLE_WORKER, "");
        self.run(self.api::<MachineSet>().create(obj))?;
        Ok(id)
    }

    /// Tears down and destroys one resource, waiting until it is gone (NotFound is fine).
    pub fn delete<K: ResourceKind>(&self, id: &str) -> Result<()> {
        let api = self.api::<K>();
        self.run(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(60),
                api.teardown_and_destroy(id),
            )
            .await
        })
        .map_err(|_| anyhow!("{} {id} was not destroyed within 60s", K::TYPE))??;
        Ok(())
    }

    /// Whether a resource exists.
    pub fn exists<K: ResourceKind>(&self, id: &str) -> Result<bool> {
        Ok(self.run(self.api::<K>().get_opt(id))?.is_some())
    }
}
