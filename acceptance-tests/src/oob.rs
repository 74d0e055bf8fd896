//! Out-of-band access to the Omni under test, for what a person with `omnictl` would do behind
//! Terraform's back (drift, deletions) and for fixtures that have no Terraform resource yet.
//!
//! The client is built without the gitops annotation: these writes are not Terraform's.

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use omni_client::omni_api::specs;
use omni_client::resources::{
    labels, Cluster, MachineClass, MachineSet, MachineStatus, TalosVersion,
};
use omni_client::{
    Api, Client, LabelQuery, ListParams, Object, ResourceKind, ServiceAccountKey, WatchEvent,
    WatchParams,
};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

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

    /// Reads one resource (`None` when it does not exist).
    pub fn get<K: ResourceKind>(&self, id: &str) -> Result<Option<Object<K>>> {
        Ok(self.run(self.api::<K>().get_opt(id))?)
    }

    /// The resources of kind `K` labelled with `cluster`.
    pub fn of_cluster<K: ResourceKind>(&self, cluster: &str) -> Result<Vec<Object<K>>> {
        Ok(self.run(self.api::<K>().list(
            &ListParams::default().labels(LabelQuery::new().equal(labels::CLUSTER, cluster)),
        ))?)
    }

    /// Creates a machine class selecting machines by label selectors.
    pub fn create_machine_class(&self, name: &str, selectors: &[&str]) -> Result<()> {
        let spec = specs::MachineClassSpec {
            match_labels: selectors.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        self.run(self.api::<MachineClass>().create(Object::new(name, spec)))?;
        Ok(())
    }

    /// IDs of the machines in the pool (MachineStatus label `available`, omni-api.md §3.2).
    pub fn available_machines(&self) -> Result<Vec<String>> {
        let list = self
            .run(self.api::<MachineStatus>().list(
                &ListParams::default().labels(LabelQuery::new().exists(labels::AVAILABLE)),
            ))?;
        Ok(list.iter().map(|m| m.id().to_string()).collect())
    }

    /// Waits on a kind watch (bounded by `timeout`) until every machine is back in the pool.
    pub fn wait_all_available(&self, timeout: Duration) -> Result<()> {
        let total = self
            .run(self.api::<MachineStatus>().list(&ListParams::default()))?
            .len();
        let api = self.api::<MachineStatus>();
        self.run(async {
            let mut events = api.watch(WatchParams::kind());
            let mut available = BTreeSet::new();
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let event = tokio::time::timeout_at(deadline, events.next())
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "only {}/{total} machines back in the pool after {timeout:?}",
                            available.len()
                        )
                    })?
                    .context("the machine watch ended")??;
                match event {
                    WatchEvent::Created(m) | WatchEvent::Updated { new: m, .. } => {
                        if m.metadata.labels.contains_key(labels::AVAILABLE) {
                            available.insert(m.id().to_string());
                        } else {
                            available.remove(m.id());
                        }
                    }
                    WatchEvent::Destroyed(m) => {
                        available.remove(m.id());
                    }
                    WatchEvent::Bootstrapped => {}
                }
                if available.len() == total {
                    return Ok(());
                }
            }
        })
    }
}
