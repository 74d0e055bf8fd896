//! Round trips through `omni-client` against `omni-emulator`, in-process: every State RPC, Omni's
//! validation answer, the auth negatives, and the controllers taking a 3+2 cluster to ready and
//! tearing it down back to an empty pool. The two crates never share code, so agreement here is
//! evidence that both follow omni-api.md.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use omni_client::omni_api::specs;
use omni_client::resources::{
    labels, Cluster, ClusterStatus, MachineSet, MachineSetNode, MachineStatus, TalosVersion,
};
use omni_client::{
    Api, Client, Error, LabelQuery, ListParams, Object, ServiceAccountKey, WatchEvent, WatchParams,
};
use omni_emulator::{keys, Emulator, RunningEmulator};

async fn emulator(machines: usize) -> RunningEmulator {
    Emulator::builder()
        .machines(machines)
        .step_delay(Duration::from_millis(20))
        .start()
        .await
        .expect("emulator starts")
}

fn client_with(emu: &RunningEmulator, key: Option<&str>) -> Client {
    let mut b = Client::builder(emu.endpoint()).managed_by("Terraform");
    if let Some(k) = key {
        b = b.service_account(ServiceAccountKey::from_base64(k).expect("key parses"));
    }
    b.build().expect("client builds")
}

/// A Talos version from the emulator's catalogue and a Kubernetes version compatible with it.
async fn versions(client: &Client) -> (String, String) {
    let all = Api::<TalosVersion>::new(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    // The newest stable release (machines run the newest Talos; Omni refuses downgrades).
    let key = |id: &str| -> Vec<u64> { id.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let v = all
        .iter()
        .filter(|v| !v.spec.compatible_kubernetes_versions.is_empty() && !v.id().contains('-'))
        .max_by_key(|v| key(v.id()))
        .expect("a stable Talos version with Kubernetes versions");
    let k8s = v
        .spec
        .compatible_kubernetes_versions
        .last()
        .unwrap()
        .clone();
    (v.id().to_string(), k8s)
}

async fn cluster_obj(client: &Client, id: &str) -> Object<Cluster> {
    let (talos, k8s) = versions(client).await;
    Object::new(
        id,
        specs::ClusterSpec {
            talos_version: talos,
            kubernetes_version: k8s,
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn every_state_rpc_round_trips() {
    let emu = emulator(0).await;
    let client = client_with(&emu, Some(emu.service_account_key()));
    let api = Api::<Cluster>::new(client.clone());

    // Create, then Get returns what was stored, with Omni's version text parsed.
    let created = api
        .create(cluster_obj(&client, "rt").await.with_label("team", "a"))
        .await
        .unwrap();
    assert_eq!(created.metadata.version, Some(1));
    let got = api.get("rt").await.unwrap();
    assert_eq!(got.spec, created.spec);
    assert_eq!(
        got.metadata.labels.get("team").map(String::as_str),
        Some("a")
    );
    assert_eq!(
        got.metadata
            .annotations
            .get("omni.sidero.dev/managed-by-gitops-tools")
            .map(String::as_str),
        Some("Terraform"),
        "every write is stamped"
    );

    // Create again: AlreadyExists. Get of a missing ID: None.
    let again = api
        .create(cluster_obj(&client, "rt").await)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::AlreadyExists(_)), "{again:?}");
    assert!(api.get_opt("missing").await.unwrap().is_none());

    // List with a label query and an ID regexp.
    api.create(cluster_obj(&client, "other").await)
        .await
        .unwrap();
    let q = LabelQuery::new().equal("team", "a");
    let listed = api.list(&ListParams::default().labels(q)).await.unwrap();
    assert_eq!(listed.iter().map(|c| c.id()).collect::<Vec<_>>(), ["rt"]);
    let all = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.id()).collect::<Vec<_>>(),
        ["other", "rt"],
        "ID-sorted"
    );

    // Watch one resource: the current state first, then our update, then its destruction.
    let mut watch = api.watch(WatchParams::single("rt"));
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(
        matches!(first, Some(Ok(WatchEvent::Created(_)))),
        "{first:?}"
    );
    let updated = api
        .update("rt", |c| {
            c.metadata.labels.insert("team".into(), "b".into());
        })
        .await
        .unwrap();
    assert!(updated.metadata.version > created.metadata.version);
    let mut saw_update = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
        if let Ok(WatchEvent::Updated { new, .. }) = ev {
            if new.metadata.labels.get("team").map(String::as_str) == Some("b") {
                saw_update = true;
                break;
            }
        }
    }
    assert!(saw_update, "the watch saw the update");

    // Teardown + destroy through the combined call; NotFound afterwards.
    api.teardown_and_destroy("other").await.unwrap();
    assert!(api.get_opt("other").await.unwrap().is_none());
    // Destroying what is gone counts as done.
    api.teardown_and_destroy("other").await.unwrap();
    emu.shutdown().await;
}

#[tokio::test]
async fn omni_validation_comes_back_as_a_validation_error() {
    let emu = emulator(0).await;
    let client = client_with(&emu, Some(emu.service_account_key()));
    let api = Api::<Cluster>::new(client.clone());
    let mut bad = cluster_obj(&client, "bad").await;
    bad.spec.talos_version = "0.0.1".into();
    match api.create(bad).await.unwrap_err() {
        Error::Validation(msg) => assert!(msg.to_lowercase().contains("version"), "{msg}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn auth_negatives_are_refused() {
    let emu = emulator(0).await;
    // No key at all.
    let anon = client_with(&emu, None);
    let err = Api::<Cluster>::new(anon).get_opt("x").await.unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
    // A well-formed key the emulator never registered.
    let stranger = keys::generate("stranger", keys::Role::Admin, 3600).unwrap();
    let err = Api::<Cluster>::new(client_with(&emu, Some(&stranger.service_account_key)))
        .get_opt("x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
    // A Reader may read but not write.
    let reader_key = emu
        .create_service_account("reader", keys::Role::Reader)
        .unwrap();
    let reader = client_with(&emu, Some(&reader_key));
    assert!(Api::<Cluster>::new(reader.clone())
        .get_opt("x")
        .await
        .unwrap()
        .is_none());
    let err = Api::<Cluster>::new(reader.clone())
        .create(cluster_obj(&reader, "r").await)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PermissionDenied(_)), "{err:?}");
    emu.shutdown().await;
}

async fn available_machines(client: &Client) -> Vec<String> {
    Api::<MachineStatus>::new(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.metadata.labels.contains_key(labels::AVAILABLE))
        .map(|m| m.id().to_string())
        .collect()
}

fn set_labels(cluster: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::CLUSTER.to_string(), cluster.to_string()),
        (role.to_string(), String::new()),
    ])
}

#[tokio::test]
async fn controllers_take_a_3_plus_2_cluster_to_ready_and_back_to_the_pool() {
    let emu = emulator(6).await;
    let client = client_with(&emu, Some(emu.service_account_key()));
    let pool = available_machines(&client).await;
    assert_eq!(pool.len(), 6, "all seeded machines start available");

    Api::<Cluster>::new(client.clone())
        .create(cluster_obj(&client, "lab").await)
        .await
        .unwrap();
    let sets = Api::<MachineSet>::new(client.clone());
    let nodes = Api::<MachineSetNode>::new(client.clone());
    for (set_id, role, machines) in [
        ("lab-control-planes", labels::ROLE_CONTROLPLANE, &pool[0..3]),
        ("lab-workers", labels::ROLE_WORKER, &pool[3..5]),
    ] {
        let mut set = Object::<MachineSet>::new(
            set_id,
            specs::MachineSetSpec {
                update_strategy: specs::machine_set_spec::UpdateStrategy::Rolling as i32,
                ..Default::default()
            },
        );
        set.metadata.labels = set_labels("lab", role);
        sets.create(set).await.unwrap();
        for m in machines {
            let mut node = Object::<MachineSetNode>::new(m.as_str(), Default::default());
            node.metadata.labels = set_labels("lab", role);
            node.metadata
                .labels
                .insert(labels::MACHINE_SET.to_string(), set_id.to_string());
            nodes.create(node).await.unwrap();
        }
    }

    // Event-driven wait for ClusterStatus: RUNNING and ready with 5 healthy machines.
    let status_api = Api::<ClusterStatus>::new(client.clone());
    let mut watch = status_api.watch(WatchParams::single("lab"));
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = watch.next().await {
            if let Ok(WatchEvent::Created(s) | WatchEvent::Updated { new: s, .. }) = ev {
                let m = s.spec.machines.unwrap_or_default();
                if s.spec.ready
                    && s.spec.phase == specs::cluster_status_spec::Phase::Running as i32
                    && m.total == 5
                    && m.healthy == 5
                {
                    return s;
                }
            }
        }
        panic!("status watch ended");
    })
    .await
    .expect("cluster became ready within 60s");
    assert!(
        ready.spec.available && ready.spec.kubernetes_api_ready && ready.spec.controlplane_ready
    );
    assert_eq!(
        available_machines(&client).await.len(),
        1,
        "5 machines taken from the pool"
    );

    // Tear the cluster down: Omni cascades to the sets and nodes and wipes the machines.
    tokio::time::timeout(
        Duration::from_secs(60),
        Api::<Cluster>::new(client.clone()).teardown_and_destroy("lab"),
    )
    .await
    .expect("teardown finished within 60s")
    .unwrap();
    let back = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let n = available_machines(&client).await;
            if n.len() == 6 {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("every machine returned to the pool");
    assert_eq!(back.len(), 6);
    assert!(sets.list(&ListParams::default()).await.unwrap().is_empty());
    assert!(nodes.list(&ListParams::default()).await.unwrap().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9_and_versions_continue() {
    // The real binary this time: SIGKILL gives it no chance to flush anything.
    let mut omni = acceptance_tests::Omni::start(0).unwrap();
    if !omni.is_emulator() {
        return; // against a real Omni there is nothing to kill
    }
    let connect = |o: &acceptance_tests::Omni| {
        Client::builder(o.endpoint.clone())
            .service_account(ServiceAccountKey::from_base64(&o.service_account_key).unwrap())
            .build()
            .unwrap()
    };
    let client = connect(&omni);
    let api = Api::<Cluster>::new(client.clone());
    let mut written = Vec::new();
    for i in 0..20 {
        let id = format!("durable-{i}");
        api.create(cluster_obj(&client, &id).await).await.unwrap();
        written.push(id);
    }
    let before = api
        .update("durable-0", |c| {
            c.metadata.labels.insert("n".into(), "1".into());
        })
        .await
        .unwrap();
    omni.kill9().unwrap();
    omni.restart().unwrap();
    let client = connect(&omni);
    let api = Api::<Cluster>::new(client.clone());
    let ids: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id().to_string())
        .collect();
    for id in &written {
        assert!(
            ids.contains(id),
            "{id} was acknowledged before kill -9 but is gone"
        );
    }
    let after = api.get("durable-0").await.unwrap();
    assert_eq!(after.metadata.version, before.metadata.version);
    assert_eq!(
        after.metadata.labels.get("n").map(String::as_str),
        Some("1")
    );
    let next = api
        .update("durable-0", |c| {
            c.metadata.labels.insert("n".into(), "2".into());
        })
        .await
        .unwrap();
    assert_eq!(
        next.metadata.version,
        before.metadata.version.map(|v| v + 1)
    );
    println!(
        "{} resources and version {:?} survived kill -9; next version {:?}",
        written.len(),
        before.metadata.version,
        next.metadata.version
    );
}

/// The write epoch moves when a write starts and when it ends, also for a write that fails,
/// and never for a read; clones of a client share it.
#[tokio::test]
async fn write_epoch_moves_on_writes_only() {
    let emu = emulator(0).await;
    let client = client_with(&emu, Some(emu.service_account_key()));
    let api = Api::<Cluster>::new(client.clone());
    let obj = cluster_obj(&client, "epoch").await;
    let e0 = client.write_epoch();
    api.create(obj.clone()).await.unwrap();
    let e1 = client.write_epoch();
    assert_eq!(e1, e0 + 2, "create: start and end");
    api.get("epoch").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(client.write_epoch(), e1, "reads leave it alone");
    assert!(matches!(
        api.create(obj).await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(client.write_epoch(), e1 + 2, "a failed write counts too");
    let other = Api::<Cluster>::new(client.clone());
    other
        .update("epoch", |o| {
            o.metadata.labels.insert("k".into(), "v".into());
        })
        .await
        .unwrap();
    assert_eq!(client.write_epoch(), e1 + 4, "shared by clones");
}
