//! Shared by the machine set tests: an out-of-band Omni client (what a person with `omnictl`
//! would do behind Terraform's back), fixtures, and event-driven waits on machines.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use acceptance_tests::Omni;
use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use omni_client::omni_api::specs;
use omni_client::resources::{labels, Cluster, MachineClass, MachineStatus, TalosVersion};
use omni_client::{
    Api, Client, LabelQuery, ListParams, Object, ResourceKind, ServiceAccountKey, WatchEvent,
    WatchParams,
};

/// A signed client (without the Terraform annotation: these writes are not Terraform's) and
/// the runtime its channels live on.
pub struct Omnictl {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl Omnictl {
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
        Ok(Omnictl { rt, client })
    }

    pub fn api<K: ResourceKind>(&self) -> Api<K> {
        Api::new(self.client.clone())
    }

    pub fn run<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// The newest stable, supported Talos version and its newest compatible Kubernetes version.
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
        .context("no supported Talos version")?;
        let spec = &versions
            .iter()
            .find(|v| v.id() == talos)
            .context("chosen from the list")?
            .spec;
        let k8s = newest(spec.compatible_kubernetes_versions.clone())
            .context("no compatible Kubernetes version")?;
        Ok((talos, k8s))
    }

    /// Creates a cluster with the newest versions (the fixture until `omni_cluster` lands).
    pub fn create_cluster(&self, name: &str) -> Result<()> {
        let (talos, k8s) = self.latest_versions()?;
        let spec = specs::ClusterSpec {
            talos_version: talos,
            kubernetes_version: k8s,
            ..Default::default()
        };
        self.run(self.api::<Cluster>().create(Object::new(name, spec)))?;
        Ok(())
    }

    /// Creates a machine class selecting by label selectors.
    pub fn create_machine_class(&self, name: &str, selectors: &[&str]) -> Result<()> {
        let spec = specs::MachineClassSpec {
            match_labels: selectors.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        self.run(self.api::<MachineClass>().create(Object::new(name, spec)))?;
        Ok(())
    }

    /// IDs of the machines currently in the pool (`available` label).
    pub fn available_machines(&self) -> Result<Vec<String>> {
        let list = self
            .run(self.api::<MachineStatus>().list(
                &ListParams::default().labels(LabelQuery::new().exists(labels::AVAILABLE)),
            ))?;
        Ok(list.iter().map(|m| m.id().to_string()).collect())
    }

    /// Every machine ID.
    pub fn all_machines(&self) -> Result<Vec<String>> {
        let list = self.run(self.api::<MachineStatus>().list(&ListParams::default()))?;
        Ok(list.iter().map(|m| m.id().to_string()).collect())
    }

    /// Waits (on a kind watch, bounded) until every machine is back in the pool.
    pub fn wait_all_available(&self, timeout: Duration) -> Result<()> {
        let total = self.all_machines()?.len();
        let api = self.api::<MachineStatus>();
        self.run(async {
            let mut events = api.watch(WatchParams::kind());
            let mut available = std::collections::BTreeSet::new();
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let ev = tokio::time::timeout_at(deadline, events.next())
                    .await
                    .map_err(|_| {
                        anyhow!(
                            "only {}/{total} machines available after {timeout:?}",
                            available.len()
                        )
                    })?
                    .context("watch ended")??;
                match ev {
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

    /// Tears down and destroys one resource, waiting until it is gone.
    pub fn delete<K: ResourceKind>(&self, id: &str) -> Result<()> {
        let api = self.api::<K>();
        self.run(async {
            tokio::time::timeout(Duration::from_secs(60), api.teardown_and_destroy(id)).await
        })
        .map_err(|_| anyhow!("{} {id} was not destroyed within 60s", K::TYPE))??;
        Ok(())
    }

    pub fn get<K: ResourceKind>(&self, id: &str) -> Result<Option<Object<K>>> {
        Ok(self.run(self.api::<K>().get_opt(id))?)
    }

    /// Objects of kind `K` labelled with `cluster`.
    pub fn of_cluster<K: ResourceKind>(&self, cluster: &str) -> Result<Vec<Object<K>>> {
        Ok(self.run(self.api::<K>().list(
            &ListParams::default().labels(LabelQuery::new().equal(labels::CLUSTER, cluster)),
        ))?)
    }
}
