//! Durability: every acknowledged write survives `kill -9` of the real binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use omni_api::cosi::resource::state_client::StateClient;
use omni_emulator::signer::Signer;

fn spawn(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omni-emulator"))
        .args(["--listen", "127.0.0.1:0", "--machines", "2", "--data-dir"])
        .arg(dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let endpoint = loop {
        let line = lines.next().expect("emulator prints a line").unwrap();
        if let Some(e) = line.strip_prefix("listening on ") {
            break e.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    assert_eq!(
        std::fs::read_to_string(dir.join("endpoint")).unwrap(),
        endpoint
    );
    (child, endpoint)
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, endpoint) = spawn(dir.path());
    let key = std::fs::read_to_string(dir.path().join("service-account.key")).unwrap();
    let signer = Signer::from_service_account_key(&key).unwrap();
    let ch = connect(&endpoint).await;
    let h = Harness2 {
        signer: signer.clone(),
        state: StateClient::new(ch),
    };
    let mut acked = Vec::new();
    for i in 0..200 {
        let r = res(
            "MachineLabels.omni.sidero.dev",
            &format!("m{i:03}"),
            vec![],
            &[("i", &i.to_string())],
        );
        h.create(r).await;
        acked.push(i);
    }
    // bump one resource a few times so the version must continue after restart
    for _ in 0..3 {
        let cur = h.get("m000").await;
        h.update(cur).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, endpoint2) = spawn(dir.path());
    let key2 = std::fs::read_to_string(dir.path().join("service-account.key")).unwrap();
    assert_eq!(key, key2, "the key survives restarts");
    let ch = connect(&endpoint2).await;
    let h = Harness2 {
        signer,
        state: StateClient::new(ch),
    };
    for i in acked {
        let r = h.get(&format!("m{i:03}")).await;
        assert_eq!(r.metadata.unwrap().labels["i"], i.to_string());
    }
    let cur = h.get("m000").await;
    assert_eq!(cur.metadata.as_ref().unwrap().version, "4");
    let next = h.update(cur).await;
    assert_eq!(next.metadata.unwrap().version, "5");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = Duration::ZERO;
}

struct Harness2 {
    signer: Signer,
    state: StateClient<tonic::transport::Channel>,
}

impl Harness2 {
    fn req<T>(&self, m: &str, msg: T) -> tonic::Request<T> {
        self.signer.sign(
            &format!("/cosi.resource.State/{m}"),
            &[],
            tonic::Request::new(msg),
        )
    }
    async fn create(&self, r: omni_api::cosi::resource::Resource) {
        let mut c = self.state.clone();
        c.create(self.req(
            "Create",
            omni_api::cosi::resource::CreateRequest {
                resource: Some(r),
                options: None,
            },
        ))
        .await
        .unwrap();
    }
    async fn get(&self, id: &str) -> omni_api::cosi::resource::Resource {
        let mut c = self.state.clone();
        c.get(self.req(
            "Get",
            omni_api::cosi::resource::GetRequest {
                namespace: NS.into(),
                r#type: "MachineLabels.omni.sidero.dev".into(),
                id: id.into(),
                options: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap()
    }
    async fn update(
        &self,
        r: omni_api::cosi::resource::Resource,
    ) -> omni_api::cosi::resource::Resource {
        let mut c = self.state.clone();
        c.update(self.req(
            "Update",
            omni_api::cosi::resource::UpdateRequest {
                new_resource: Some(r),
                options: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .resource
        .unwrap()
    }
}

#[tokio::test]
async fn restart_keeps_clusters_keys_and_machine_ids() {
    use omni_api::specs;
    let dir = tempfile::tempdir().unwrap();
    let builder = || {
        omni_emulator::Emulator::builder()
            .machines(2)
            .seed(42)
            .data_dir(dir.path())
            .step_delay(Duration::from_millis(20))
            .catalogue(test_catalogue())
    };
    let h = start_with(builder()).await;
    let machines = h.machine_ids().await;
    h.create(res(t::CLUSTER, "p", cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    h.create(res(
        t::MACHINE_SET,
        "p-control-planes",
        machine_set_spec(),
        &[(t::CLUSTER_LABEL, "p"), (t::CP, "")],
    ))
    .await
    .unwrap();
    h.create(res(
        t::MSN,
        &machines[0],
        vec![],
        &[
            (t::CLUSTER_LABEL, "p"),
            (t::MS_LABEL, "p-control-planes"),
            (t::CP, ""),
        ],
    ))
    .await
    .unwrap();
    h.wait_for(t::CLUSTER_STATUS, "p", 30, |r| {
        dec::<specs::ClusterStatusSpec>(r).ready
    })
    .await;
    let version = h
        .get(t::CLUSTER, "p")
        .await
        .unwrap()
        .metadata
        .unwrap()
        .version;
    let key = h.emu.service_account_key().to_string();
    h.emu.shutdown().await;

    let h = start_with(builder()).await;
    assert_eq!(h.emu.service_account_key(), key);
    assert_eq!(h.machine_ids().await, machines);
    assert_eq!(
        h.get(t::CLUSTER, "p")
            .await
            .unwrap()
            .metadata
            .unwrap()
            .version,
        version
    );
    assert!(dec::<specs::ClusterStatusSpec>(&h.get(t::CLUSTER_STATUS, "p").await.unwrap()).ready);
    // controllers pick up where they left off: tearing the cluster down still releases the machine
    h.teardown_and_destroy(t::CLUSTER, "p").await.unwrap();
    let ms = h.get(t::MACHINE_STATUS, &machines[0]).await.unwrap();
    assert!(ms
        .metadata
        .unwrap()
        .labels
        .contains_key("omni.sidero.dev/available"));
    h.emu.shutdown().await;
}
