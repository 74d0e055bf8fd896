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
