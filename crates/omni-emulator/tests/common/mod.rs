//! Test harness: an in-process emulator on port 0 and signed tonic clients.
#![allow(dead_code)]

use std::time::Duration;

use omni_api::cosi::resource::{self as pb, state_client::StateClient};
use omni_emulator::signer::Signer;
use omni_emulator::{Emulator, RunningEmulator};
use tonic::transport::Channel;
use tonic::Request;

pub const NS: &str = "default";

pub struct Harness {
    pub emu: RunningEmulator,
    pub signer: Signer,
    pub state: StateClient<Channel>,
    pub channel: Channel,
}

pub async fn start(machines: usize) -> Harness {
    start_with(
        Emulator::builder()
            .machines(machines)
            .step_delay(Duration::from_millis(20)),
    )
    .await
}

pub async fn start_with(b: omni_emulator::EmulatorBuilder) -> Harness {
    let emu = b.start().await.expect("emulator starts");
    let signer = Signer::from_service_account_key(emu.service_account_key()).unwrap();
    let channel = connect(emu.endpoint()).await;
    Harness {
        state: StateClient::new(channel.clone()),
        channel,
        signer,
        emu,
    }
}

pub async fn connect(endpoint: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connects")
}

pub fn res(typ: &str, id: &str, spec: Vec<u8>, labels: &[(&str, &str)]) -> pb::Resource {
    pb::Resource {
        metadata: Some(pb::Metadata {
            namespace: NS.into(),
            r#type: typ.into(),
            id: id.into(),
            version: "undefined".into(),
            phase: "running".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        spec: Some(pb::Spec {
            proto_spec: spec,
            yaml_spec: String::new(),
        }),
    }
}

impl Harness {
    pub fn req<T>(&self, method: &str, msg: T) -> Request<T> {
        self.signer.sign(
            &format!("/cosi.resource.State/{method}"),
            &[],
            Request::new(msg),
        )
    }

    pub async fn create(&self, r: pb::Resource) -> Result<pb::Resource, tonic::Status> {
        let mut c = self.state.clone();
        c.create(self.req(
            "Create",
            pb::CreateRequest {
                resource: Some(r),
                options: Some(Default::default()),
            },
        ))
        .await
        .map(|r| r.into_inner().resource.unwrap())
    }

    pub async fn get(&self, typ: &str, id: &str) -> Result<pb::Resource, tonic::Status> {
        let mut c = self.state.clone();
        c.get(self.req(
            "Get",
            pb::GetRequest {
                namespace: NS.into(),
                r#type: typ.into(),
                id: id.into(),
                options: Some(Default::default()),
            },
        ))
        .await
        .map(|r| r.into_inner().resource.unwrap())
    }

    pub async fn update(&self, r: pb::Resource) -> Result<pb::Resource, tonic::Status> {
        let mut c = self.state.clone();
        c.update(self.req(
            "Update",
            pb::UpdateRequest {
                new_resource: Some(r),
                options: Some(pb::UpdateOptions {
                    owner: String::new(),
                    expected_phase: Some("running".into()),
                }),
            },
        ))
        .await
        .map(|r| r.into_inner().resource.unwrap())
    }

    pub async fn list(
        &self,
        typ: &str,
        q: Vec<pb::LabelQuery>,
    ) -> Result<Vec<pb::Resource>, tonic::Status> {
        let mut c = self.state.clone();
        let mut s = c
            .list(self.req(
                "List",
                pb::ListRequest {
                    namespace: NS.into(),
                    r#type: typ.into(),
                    options: Some(pb::ListOptions {
                        label_query: q,
                        id_query: None,
                    }),
                },
            ))
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await? {
            out.push(m.resource.unwrap());
        }
        Ok(out)
    }

    pub async fn teardown(&self, typ: &str, id: &str) -> Result<bool, tonic::Status> {
        let mut c = self.state.clone();
        c.teardown(self.req(
            "Teardown",
            pb::TeardownRequest {
                namespace: NS.into(),
                r#type: typ.into(),
                id: id.into(),
                options: Some(Default::default()),
            },
        ))
        .await
        .map(|r| r.into_inner().destroy_ready)
    }

    pub async fn destroy(&self, typ: &str, id: &str) -> Result<(), tonic::Status> {
        let mut c = self.state.clone();
        c.destroy(self.req(
            "Destroy",
            pb::DestroyRequest {
                namespace: NS.into(),
                r#type: typ.into(),
                id: id.into(),
                options: Some(Default::default()),
            },
        ))
        .await
        .map(|_| ())
    }

    pub async fn teardown_and_destroy(&self, typ: &str, id: &str) -> Result<(), tonic::Status> {
        let mut c = self.state.clone();
        c.teardown_and_destroy(self.req(
            "TeardownAndDestroy",
            pb::TeardownAndDestroyRequest {
                namespace: NS.into(),
                r#type: typ.into(),
                id: id.into(),
                options: Some(Default::default()),
            },
        ))
        .await
        .map(|_| ())
    }

    pub async fn watch(
        &self,
        w: pb::WatchRequest,
    ) -> Result<tonic::Streaming<pb::WatchResponse>, tonic::Status> {
        let mut c = self.state.clone();
        c.watch(self.req("Watch", w)).await.map(|r| r.into_inner())
    }

    /// Polls until `f` holds for the resource (or panics after `secs`).
    pub async fn wait_for<F: Fn(&pb::Resource) -> bool>(
        &self,
        typ: &str,
        id: &str,
        secs: u64,
        f: F,
    ) -> pb::Resource {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Ok(r) = self.get(typ, id).await {
                if f(&r) {
                    return r;
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {typ}/{id}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn term(
    key: &str,
    op: pb::label_term::Operation,
    values: &[&str],
    invert: bool,
) -> pb::LabelTerm {
    pb::LabelTerm {
        key: key.into(),
        op: op as i32,
        value: values.iter().map(|s| s.to_string()).collect(),
        invert,
    }
}

/// A small pinned catalogue so tests do not depend on the shipped one.
pub fn test_catalogue() -> omni_emulator::seed::Catalogue {
    use talos_machinery::versions::{Extension, TalosRelease};
    let ext = |name: &str| Extension {
        name: format!("siderolabs/{name}"),
        image: format!("ghcr.io/siderolabs/{name}:v1.0.0"),
        digest: format!("sha256:{:064x}", name.len()),
        author: "Sidero Labs".into(),
        description: format!("{name} extension"),
    };
    let mut extensions = std::collections::BTreeMap::new();
    extensions.insert("1.12.4".to_string(), vec![ext("iscsi-tools")]);
    extensions.insert(
        "1.13.0".to_string(),
        vec![ext("iscsi-tools"), ext("qemu-guest-agent")],
    );
    omni_emulator::seed::Catalogue {
        talos: vec![
            TalosRelease {
                version: "1.12.4".into(),
                compatible_kubernetes: vec!["1.34.0".into(), "1.34.1".into(), "1.35.0".into()],
            },
            TalosRelease {
                version: "1.13.0".into(),
                compatible_kubernetes: vec![
                    "1.34.1".into(),
                    "1.35.0".into(),
                    "1.35.1".into(),
                    "1.36.0".into(),
                ],
            },
            TalosRelease {
                version: "1.13.1".into(),
                compatible_kubernetes: vec![
                    "1.34.1".into(),
                    "1.35.0".into(),
                    "1.35.1".into(),
                    "1.36.0".into(),
                ],
            },
        ],
        kubernetes: vec![
            "1.34.0".into(),
            "1.34.1".into(),
            "1.35.0".into(),
            "1.35.1".into(),
            "1.36.0".into(),
        ],
        extensions,
    }
}

pub async fn start_pinned(machines: usize) -> Harness {
    start_with(
        Emulator::builder()
            .machines(machines)
            .step_delay(Duration::from_millis(20))
            .catalogue(test_catalogue()),
    )
    .await
}

pub mod t {
    pub const CLUSTER: &str = "Clusters.omni.sidero.dev";
    pub const MACHINE_SET: &str = "MachineSets.omni.sidero.dev";
    pub const MSN: &str = "MachineSetNodes.omni.sidero.dev";
    pub const CONFIG_PATCH: &str = "ConfigPatches.omni.sidero.dev";
    pub const MACHINE_CLASS: &str = "MachineClasses.omni.sidero.dev";
    pub const EXT_CONFIG: &str = "ExtensionsConfigurations.omni.sidero.dev";
    pub const MACHINE_STATUS: &str = "MachineStatuses.omni.sidero.dev";
    pub const CLUSTER_STATUS: &str = "ClusterStatuses.omni.sidero.dev";
    pub const MSS: &str = "MachineSetStatuses.omni.sidero.dev";
    pub const CM: &str = "ClusterMachines.omni.sidero.dev";
    pub const CMS: &str = "ClusterMachineStatuses.omni.sidero.dev";
    pub const KUS: &str = "KubernetesUpgradeStatuses.omni.sidero.dev";
    pub const TUS: &str = "TalosUpgradeStatuses.omni.sidero.dev";
    pub const CLUSTER_LABEL: &str = "omni.sidero.dev/cluster";
    pub const MS_LABEL: &str = "omni.sidero.dev/machine-set";
    pub const CP: &str = "omni.sidero.dev/role-controlplane";
    pub const WORKER: &str = "omni.sidero.dev/role-worker";
}

pub fn cluster_spec(talos: &str, k8s: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&omni_api::specs::ClusterSpec {
        talos_version: talos.into(),
        kubernetes_version: k8s.into(),
        ..Default::default()
    })
}

pub fn machine_set_spec() -> Vec<u8> {
    prost::Message::encode_to_vec(&omni_api::specs::MachineSetSpec {
        update_strategy: 1,
        ..Default::default()
    })
}

pub fn dec<M: prost::Message + Default>(r: &pb::Resource) -> M {
    M::decode(r.spec.as_ref().unwrap().proto_spec.as_slice()).unwrap()
}

pub fn id_of(r: &pb::Resource) -> String {
    r.metadata.as_ref().unwrap().id.clone()
}

impl Harness {
    /// Get-modify-Update with retries on version conflicts (what real clients do).
    pub async fn modify(&self, typ: &str, id: &str, f: impl Fn(&mut pb::Resource)) -> pb::Resource {
        loop {
            let mut r = self.get(typ, id).await.unwrap();
            f(&mut r);
            match self.update(r).await {
                Ok(r) => return r,
                Err(e) if e.code() == tonic::Code::FailedPrecondition => continue,
                Err(e) => panic!("update failed: {e}"),
            }
        }
    }

    pub async fn machine_ids(&self) -> Vec<String> {
        self.list(t::MACHINE_STATUS, vec![])
            .await
            .unwrap()
            .iter()
            .map(id_of)
            .collect()
    }
}
