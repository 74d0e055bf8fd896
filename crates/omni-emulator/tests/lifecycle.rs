//! Controllers: a 3 control-plane + 2 worker cluster reaches ready, upgrades, and tears down
//! back to an empty pool (omni-api.md §5).

mod common;

use common::*;
use omni_api::specs;

async fn wait_cluster_ready(h: &Harness, cluster: &str, expected: u32) {
    h.wait_for(t::CLUSTER_STATUS, cluster, 30, |r| {
        let s: specs::ClusterStatusSpec = dec(r);
        s.ready
            && s.phase == specs::cluster_status_spec::Phase::Running as i32
            && s.machines
                .as_ref()
                .is_some_and(|m| m.healthy == expected && m.total == expected)
    })
    .await;
}

#[tokio::test]
async fn cluster_reaches_ready_upgrades_and_tears_down() {
    let h = start_pinned(6).await;
    let machines = h.machine_ids().await;
    assert_eq!(machines.len(), 6);
    h.create(res(
        t::CLUSTER,
        "c1",
        cluster_spec("1.13.0", "1.35.0"),
        &[("env", "test")],
    ))
    .await
    .unwrap();
    h.create(res(
        t::MACHINE_SET,
        "c1-control-planes",
        machine_set_spec(),
        &[(t::CLUSTER_LABEL, "c1"), (t::CP, "")],
    ))
    .await
    .unwrap();
    h.create(res(
        t::MACHINE_SET,
        "c1-workers",
        machine_set_spec(),
        &[(t::CLUSTER_LABEL, "c1"), (t::WORKER, "")],
    ))
    .await
    .unwrap();
    for (i, m) in machines.iter().take(5).enumerate() {
        let (set, role) = if i < 3 {
            ("c1-control-planes", t::CP)
        } else {
            ("c1-workers", t::WORKER)
        };
        h.create(res(
            t::MSN,
            m,
            vec![],
            &[(t::CLUSTER_LABEL, "c1"), (t::MS_LABEL, set), (role, "")],
        ))
        .await
        .unwrap();
    }
    wait_cluster_ready(&h, "c1", 5).await;
    let cs: specs::ClusterStatusSpec = dec(&h.get(t::CLUSTER_STATUS, "c1").await.unwrap());
    assert!(cs.available && cs.kubernetes_api_ready && cs.controlplane_ready);
    assert_eq!(cs.talos_version, "1.13.0");
    assert_eq!(
        h.get(t::CLUSTER_STATUS, "c1")
            .await
            .unwrap()
            .metadata
            .unwrap()
            .labels["env"],
        "test"
    );
    for ms in h.list(t::MSS, vec![]).await.unwrap() {
        let s: specs::MachineSetStatusSpec = dec(&ms);
        assert!(s.ready, "{} not ready", id_of(&ms));
        assert_eq!(s.phase, specs::MachineSetPhase::Running as i32);
    }
    for cms in h.list(t::CMS, vec![]).await.unwrap() {
        let s: specs::ClusterMachineStatusSpec = dec(&cms);
        assert!(s.ready && s.stage == specs::cluster_machine_status_spec::Stage::Running as i32);
    }
    let kus: specs::KubernetesUpgradeStatusSpec = dec(&h.get(t::KUS, "c1").await.unwrap());
    assert_eq!(
        (kus.phase, kus.last_upgrade_version.as_str()),
        (2, "1.35.0")
    );
    let tus: specs::TalosUpgradeStatusSpec = dec(&h.get(t::TUS, "c1").await.unwrap());
    assert_eq!(
        (tus.phase, tus.last_upgrade_version.as_str()),
        (2, "1.13.0")
    );
    // allocated machines are no longer available; the sixth is
    let free: Vec<_> = h
        .list(t::MACHINE_STATUS, vec![])
        .await
        .unwrap()
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .unwrap()
                .labels
                .contains_key("omni.sidero.dev/available")
        })
        .collect();
    assert_eq!(free.len(), 1);
    // the cluster carries the controller finalizer
    assert!(h
        .get(t::CLUSTER, "c1")
        .await
        .unwrap()
        .metadata
        .unwrap()
        .finalizers
        .contains(&"ClusterController".to_string()));

    // A new cluster-wide config patch is applied to every machine (Reconfiguring → ready).
    let hash_of = |r: &omni_api::cosi::resource::Resource| {
        r.metadata
            .as_ref()
            .unwrap()
            .annotations
            .get("emulator.omni.sidero.dev/config-hash")
            .cloned()
    };
    let before = hash_of(&h.get(t::CMS, &machines[0]).await.unwrap());
    let patch = specs::ConfigPatchSpec {
        data: "machine:\n  network:\n    hostname: x\n".into(),
        compressed_data: vec![],
    };
    h.create(res(
        t::CONFIG_PATCH,
        "200-c1-net",
        prost::Message::encode_to_vec(&patch),
        &[(t::CLUSTER_LABEL, "c1")],
    ))
    .await
    .unwrap();
    h.wait_for(t::CMS, &machines[0], 30, |r| {
        hash_of(r) != before && dec::<specs::ClusterMachineStatusSpec>(r).ready
    })
    .await;
    wait_cluster_ready(&h, "c1", 5).await;

    // Kubernetes upgrade: Upgrading, then Done with the new version.
    h.modify(t::CLUSTER, "c1", |r| {
        r.spec.as_mut().unwrap().proto_spec = cluster_spec("1.13.0", "1.35.1");
    })
    .await;
    h.wait_for(t::KUS, "c1", 30, |r| {
        let s: specs::KubernetesUpgradeStatusSpec = dec(r);
        s.phase == specs::kubernetes_upgrade_status_spec::Phase::Done as i32
            && s.last_upgrade_version == "1.35.1"
    })
    .await;
    for cm in h.list(t::CM, vec![]).await.unwrap() {
        let s: specs::ClusterMachineSpec = dec(&cm);
        assert_eq!(s.kubernetes_version, "1.35.1");
    }
    wait_cluster_ready(&h, "c1", 5).await;

    // Talos upgrade: machines go UPGRADING one by one and come back on the new version.
    h.modify(t::CLUSTER, "c1", |r| {
        r.spec.as_mut().unwrap().proto_spec = cluster_spec("1.13.1", "1.35.1");
    })
    .await;
    h.wait_for(t::TUS, "c1", 30, |r| {
        let s: specs::TalosUpgradeStatusSpec = dec(r);
        s.phase == specs::talos_upgrade_status_spec::Phase::Done as i32
            && s.last_upgrade_version == "1.13.1"
    })
    .await;
    wait_cluster_ready(&h, "c1", 5).await;
    for m in machines.iter().take(5) {
        let ms: specs::MachineStatusSpec = dec(&h.get(t::MACHINE_STATUS, m).await.unwrap());
        assert_eq!(ms.talos_version, "v1.13.1");
    }

    // Teardown cascade: everything goes, machines return to the pool.
    h.teardown_and_destroy(t::CLUSTER, "c1").await.unwrap();
    assert_eq!(
        h.get(t::CLUSTER, "c1").await.unwrap_err().code(),
        tonic::Code::NotFound
    );
    for typ in [
        t::MACHINE_SET,
        t::MSN,
        t::CM,
        t::CMS,
        t::MSS,
        t::CLUSTER_STATUS,
        t::KUS,
        t::TUS,
    ] {
        assert!(
            h.list(typ, vec![]).await.unwrap().is_empty(),
            "{typ} left over"
        );
    }
    for m in h.list(t::MACHINE_STATUS, vec![]).await.unwrap() {
        let md = m.metadata.as_ref().unwrap();
        assert!(
            md.labels.contains_key("omni.sidero.dev/available"),
            "{} not back in the pool",
            md.id
        );
        assert!(!md.labels.contains_key(t::CLUSTER_LABEL));
    }
    h.emu.shutdown().await;
}

#[tokio::test]
async fn machine_class_allocation_scales_and_releases() {
    let h = start_pinned(4).await;
    let class = specs::MachineClassSpec {
        match_labels: vec!["omni.sidero.dev/arch=amd64".into()],
        auto_provision: None,
    };
    h.create(res(
        t::MACHINE_CLASS,
        "amd",
        prost::Message::encode_to_vec(&class),
        &[],
    ))
    .await
    .unwrap();
    h.create(res(t::CLUSTER, "c2", cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    let alloc = |n: u32| {
        prost::Message::encode_to_vec(&specs::MachineSetSpec {
            update_strategy: 1,
            machine_allocation: Some(specs::machine_set_spec::MachineAllocation {
                name: "amd".into(),
                machine_count: n,
                allocation_type: 0,
            }),
            ..Default::default()
        })
    };
    h.create(res(
        t::MACHINE_SET,
        "c2-control-planes",
        alloc(1),
        &[(t::CLUSTER_LABEL, "c2"), (t::CP, "")],
    ))
    .await
    .unwrap();
    h.create(res(
        t::MACHINE_SET,
        "c2-workers",
        alloc(2),
        &[(t::CLUSTER_LABEL, "c2"), (t::WORKER, "")],
    ))
    .await
    .unwrap();
    wait_cluster_ready(&h, "c2", 3).await;
    let nodes = h.list(t::MSN, vec![]).await.unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes
        .iter()
        .all(|n| n.metadata.as_ref().unwrap().owner == "MachineSetNodeController"));
    // scale workers down to 1
    h.modify(t::MACHINE_SET, "c2-workers", |r| {
        r.spec.as_mut().unwrap().proto_spec = alloc(1)
    })
    .await;
    wait_cluster_ready(&h, "c2", 2).await;
    h.wait_for(t::MSS, "c2-workers", 30, |r| {
        dec::<specs::MachineSetStatusSpec>(r)
            .machines
            .unwrap()
            .total
            == 1
    })
    .await;
    // class in use cannot be deleted
    let err = h.teardown(t::MACHINE_CLASS, "amd").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .contains("still in use by machine sets: c2-control-planes, c2-workers"),
        "{}",
        err.message()
    );
    h.teardown_and_destroy(t::CLUSTER, "c2").await.unwrap();
    let free = h
        .list(t::MACHINE_STATUS, vec![])
        .await
        .unwrap()
        .into_iter()
        .filter(|m| {
            m.metadata
                .as_ref()
                .unwrap()
                .labels
                .contains_key("omni.sidero.dev/available")
        })
        .count();
    assert_eq!(free, 4);
    h.emu.shutdown().await;
}

#[tokio::test]
async fn machine_labels_reach_machine_status_and_class_selectors() {
    let h = start_pinned(3).await;
    let machines = h.machine_ids().await;
    h.create(res(
        "MachineLabels.omni.sidero.dev",
        &machines[2],
        vec![],
        &[("rack", "r1")],
    ))
    .await
    .unwrap();
    h.wait_for(t::MACHINE_STATUS, &machines[2], 10, |r| {
        r.metadata
            .as_ref()
            .unwrap()
            .labels
            .get("rack")
            .map(String::as_str)
            == Some("r1")
    })
    .await;
    let class = specs::MachineClassSpec {
        match_labels: vec!["rack=r1".into()],
        auto_provision: None,
    };
    h.create(res(
        t::MACHINE_CLASS,
        "r1",
        prost::Message::encode_to_vec(&class),
        &[],
    ))
    .await
    .unwrap();
    h.create(res(t::CLUSTER, "c3", cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    let spec = specs::MachineSetSpec {
        machine_allocation: Some(specs::machine_set_spec::MachineAllocation {
            name: "r1".into(),
            machine_count: 0,
            allocation_type: 1,
        }),
        ..Default::default()
    };
    h.create(res(
        t::MACHINE_SET,
        "c3-control-planes",
        prost::Message::encode_to_vec(&spec),
        &[(t::CLUSTER_LABEL, "c3"), (t::CP, "")],
    ))
    .await
    .unwrap();
    wait_cluster_ready(&h, "c3", 1).await;
    let nodes = h.list(t::MSN, vec![]).await.unwrap();
    assert_eq!(
        nodes.iter().map(id_of).collect::<Vec<_>>(),
        [machines[2].clone()]
    );
    // removing the MachineLabels removes the user label again
    h.teardown_and_destroy("MachineLabels.omni.sidero.dev", &machines[2])
        .await
        .unwrap();
    h.wait_for(t::MACHINE_STATUS, &machines[2], 10, |r| {
        !r.metadata.as_ref().unwrap().labels.contains_key("rack")
    })
    .await;
    h.emu.shutdown().await;
}
