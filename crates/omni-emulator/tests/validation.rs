//! Server-side validation (omni-api.md §4): InvalidArgument with `failed to validate: ` and
//! go-multierror text.

mod common;

use common::*;
use omni_api::specs;
use tonic::Code;

fn invalid(e: tonic::Status, want: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    assert!(
        e.message().starts_with("failed to validate: "),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains(want),
        "missing {want:?} in {:?}",
        e.message()
    );
}

#[tokio::test]
async fn cluster_rules() {
    let h = start_pinned(0).await;
    invalid(
        h.create(res(
            t::CLUSTER,
            "bad name",
            cluster_spec("1.13.0", "1.35.0"),
            &[],
        ))
        .await
        .unwrap_err(),
        "name should only contain letters, digits, dashes and underscores",
    );
    invalid(
        h.create(res(t::CLUSTER, "c", cluster_spec("1.99.0", "1.35.0"), &[]))
            .await
            .unwrap_err(),
        "invalid talos version \"1.99.0\"",
    );
    invalid(
        h.create(res(t::CLUSTER, "c", cluster_spec("1.13.0", "nope"), &[]))
            .await
            .unwrap_err(),
        "error validating Kubernetes version",
    );
    let e = h
        .create(res(t::CLUSTER, "c", cluster_spec("1.12.4", "1.36.0"), &[]))
        .await
        .unwrap_err();
    invalid(
        e.clone(),
        "invalid kubernetes version \"1.36.0\": is not compatible with talos version \"1.12.4\"",
    );
    assert_eq!(e.message(), "failed to validate: 1 error occurred:\n\t* invalid kubernetes version \"1.36.0\": is not compatible with talos version \"1.12.4\"\n\n");
    // two problems → "2 errors occurred"
    let e = h
        .create(res(
            t::CLUSTER,
            "b@d",
            cluster_spec("1.12.4", "1.36.0"),
            &[],
        ))
        .await
        .unwrap_err();
    assert!(
        e.message()
            .starts_with("failed to validate: 2 errors occurred:\n\t* "),
        "{}",
        e.message()
    );
    // backup interval limits (1h..24h)
    let mut spec = specs::ClusterSpec {
        talos_version: "1.13.0".into(),
        kubernetes_version: "1.35.0".into(),
        ..Default::default()
    };
    spec.backup_configuration = Some(specs::EtcdBackupConf {
        interval: Some(prost_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        enabled: true,
    });
    invalid(
        h.create(res(
            t::CLUSTER,
            "c",
            prost::Message::encode_to_vec(&spec),
            &[],
        ))
        .await
        .unwrap_err(),
        "backup interval must be greater than 1h0m0s",
    );
    // ok, then upgrade rules
    h.create(res(t::CLUSTER, "c", cluster_spec("1.13.0", "1.34.1"), &[]))
        .await
        .unwrap();
    let cur = h
        .wait_for(t::CLUSTER, "c", 10, |r| {
            !r.metadata.as_ref().unwrap().finalizers.is_empty()
        })
        .await;
    let mut skip = cur.clone();
    skip.spec.as_mut().unwrap().proto_spec = cluster_spec("1.13.0", "1.36.0");
    invalid(
        h.update(skip).await.unwrap_err(),
        "kubernetes version is not supported for upgrade to \"1.36.0\" from \"1.34.1\"",
    );
    let mut down = cur.clone();
    down.spec.as_mut().unwrap().proto_spec = cluster_spec("1.12.4", "1.34.1");
    invalid(
        h.update(down).await.unwrap_err(),
        "downgrading from version 1.13.0 to 1.12.4 is not supported",
    );
    let mut enc = cur.clone();
    let mut s: specs::ClusterSpec = dec(&cur);
    s.features = Some(specs::cluster_spec::Features {
        disk_encryption: true,
        ..Default::default()
    });
    enc.spec.as_mut().unwrap().proto_spec = prost::Message::encode_to_vec(&s);
    invalid(
        h.update(enc).await.unwrap_err(),
        "updating disk encryption settings is not allowed",
    );
    // locked cluster
    let locked = h
        .modify(t::CLUSTER, "c", |r| {
            r.metadata
                .as_mut()
                .unwrap()
                .annotations
                .insert("omni.sidero.dev/cluster-locked".into(), String::new());
        })
        .await;
    let mut l2 = locked.clone();
    l2.metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("x".into(), "y".into());
    invalid(
        h.update(l2).await.unwrap_err(),
        "updating cluster configuration is not allowed: the cluster \"c\" is locked",
    );
    h.wait_for(t::CLUSTER_STATUS, "c", 10, |_| true).await;
    invalid(
        h.teardown(t::CLUSTER, "c").await.unwrap_err(),
        "deletion is not allowed: the cluster \"c\" is locked",
    );
    h.emu.shutdown().await;
}

#[tokio::test]
async fn machine_set_and_node_rules() {
    let h = start_pinned(3).await;
    let ms =
        |id: &str, labels: &[(&str, &str)]| res(t::MACHINE_SET, id, machine_set_spec(), labels);
    invalid(
        h.create(ms("x-workers", &[(t::WORKER, "")]))
            .await
            .unwrap_err(),
        "label \"omni.sidero.dev/cluster\" does not exist",
    );
    invalid(
        h.create(ms("x-workers", &[(t::CLUSTER_LABEL, "x"), (t::WORKER, "")]))
            .await
            .unwrap_err(),
        "the cluster \"x\" does not exist",
    );
    h.create(res(t::CLUSTER, "x", cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    invalid(
        h.create(ms("x-workers", &[(t::CLUSTER_LABEL, "x")]))
            .await
            .unwrap_err(),
        "machine set must have either",
    );
    invalid(
        h.create(ms("y-workers", &[(t::CLUSTER_LABEL, "x"), (t::WORKER, "")]))
            .await
            .unwrap_err(),
        "ID must have \"x-\" as prefix",
    );
    invalid(
        h.create(ms("x-cp", &[(t::CLUSTER_LABEL, "x"), (t::CP, "")]))
            .await
            .unwrap_err(),
        "control plane machine set must have ID \"x-control-planes\"",
    );
    invalid(
        h.create(ms(
            "x-control-planes",
            &[(t::CLUSTER_LABEL, "x"), (t::WORKER, "")],
        ))
        .await
        .unwrap_err(),
        "worker machine set must not have ID",
    );
    h.create(ms(
        "x-control-planes",
        &[(t::CLUSTER_LABEL, "x"), (t::CP, "")],
    ))
    .await
    .unwrap();
    // a second control-plane set has the same ID → AlreadyExists
    assert_eq!(
        h.create(ms(
            "x-control-planes",
            &[(t::CLUSTER_LABEL, "x"), (t::CP, "")]
        ))
        .await
        .unwrap_err()
        .code(),
        Code::AlreadyExists
    );
    // machine allocation rules
    let spec = specs::MachineSetSpec {
        machine_allocation: Some(specs::machine_set_spec::MachineAllocation {
            name: "missing".into(),
            machine_count: 2,
            allocation_type: 1,
        }),
        ..Default::default()
    };
    let e = h
        .create(res(
            t::MACHINE_SET,
            "x-w2",
            prost::Message::encode_to_vec(&spec),
            &[(t::CLUSTER_LABEL, "x"), (t::WORKER, "")],
        ))
        .await
        .unwrap_err();
    invalid(
        e.clone(),
        "machine count can be set only if static allocation type is used",
    );
    invalid(e, "machine class with name \"missing\" doesn't exist");
    // cluster label is immutable
    let cur = h.get(t::MACHINE_SET, "x-control-planes").await.unwrap();
    let mut moved = cur.clone();
    moved
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .insert(t::CLUSTER_LABEL.into(), "other".into());
    invalid(
        h.update(moved).await.unwrap_err(),
        "changing value of label \"omni.sidero.dev/cluster\" is not allowed",
    );

    let machines = h.machine_ids().await;
    let node = |id: &str, set: &str| {
        res(
            t::MSN,
            id,
            vec![],
            &[(t::CLUSTER_LABEL, "x"), (t::MS_LABEL, set), (t::CP, "")],
        )
    };
    invalid(
        h.create(node(&machines[0], "x-nope")).await.unwrap_err(),
        "the machine set does not exist",
    );
    let mut locked = node(&machines[0], "x-control-planes");
    locked
        .metadata
        .as_mut()
        .unwrap()
        .annotations
        .insert("omni.sidero.dev/locked".into(), String::new());
    invalid(
        h.create(locked).await.unwrap_err(),
        "locking controlplanes is not allowed",
    );
    // machines run 1.13 from ISO: an older cluster refuses them
    h.create(res(
        t::CLUSTER,
        "old",
        cluster_spec("1.12.4", "1.34.0"),
        &[],
    ))
    .await
    .unwrap();
    h.create(res(
        t::MACHINE_SET,
        "old-control-planes",
        machine_set_spec(),
        &[(t::CLUSTER_LABEL, "old"), (t::CP, "")],
    ))
    .await
    .unwrap();
    let n = res(
        t::MSN,
        &machines[1],
        vec![],
        &[
            (t::CLUSTER_LABEL, "old"),
            (t::MS_LABEL, "old-control-planes"),
            (t::CP, ""),
        ],
    );
    invalid(h.create(n).await.unwrap_err(), "downgrade is not allowed");
    h.create(node(&machines[0], "x-control-planes"))
        .await
        .unwrap();
    h.emu.shutdown().await;
}

#[tokio::test]
async fn patch_class_extension_and_metadata_rules() {
    let h = start_pinned(0).await;
    let patch = |data: &str| {
        prost::Message::encode_to_vec(&specs::ConfigPatchSpec {
            data: data.into(),
            compressed_data: vec![],
        })
    };
    invalid(
        h.create(res(
            t::CONFIG_PATCH,
            "400-p",
            patch("machine:\n  install:\n    disk: /dev/sda\n"),
            &[],
        ))
        .await
        .unwrap_err(),
        "overriding \"machine.install.disk\" is not allowed in the config patch",
    );
    h.create(res(
        t::CONFIG_PATCH,
        "400-ok",
        patch("machine:\n  network:\n    hostname: a\n"),
        &[],
    ))
    .await
    .unwrap();

    let class = |labels: Vec<&str>| {
        prost::Message::encode_to_vec(&specs::MachineClassSpec {
            match_labels: labels.into_iter().map(String::from).collect(),
            auto_provision: None,
        })
    };
    invalid(
        h.create(res(t::MACHINE_CLASS, "empty", class(vec![]), &[]))
            .await
            .unwrap_err(),
        "should either have auto provision or match labels set",
    );
    invalid(
        h.create(res(
            t::MACHINE_CLASS,
            "res",
            class(vec!["omni.sidero.dev/no-manual-allocation"]),
            &[],
        ))
        .await
        .unwrap_err(),
        "omni.sidero.dev/no-manual-allocation",
    );

    h.create(res(t::CLUSTER, "e", cluster_spec("1.12.4", "1.34.0"), &[]))
        .await
        .unwrap();
    let ext = |names: &[&str]| {
        prost::Message::encode_to_vec(&specs::ExtensionsConfigurationSpec {
            extensions: names.iter().map(|s| s.to_string()).collect(),
        })
    };
    h.create(res(t::EXT_CONFIG, "schematic-e0", ext(&[]), &[]))
        .await
        .unwrap();
    invalid(
        h.create(res(t::EXT_CONFIG, "schematic-e1", ext(&["siderolabs/qemu-guest-agent"]), &[(t::CLUSTER_LABEL, "e")])).await.unwrap_err(),
        "extension \"siderolabs/qemu-guest-agent\" (entry 0) is not available for Talos version \"1.12.4\"",
    );
    h.create(res(
        t::EXT_CONFIG,
        "schematic-e",
        ext(&["iscsi-tools"]),
        &[(t::CLUSTER_LABEL, "e")],
    ))
    .await
    .unwrap();

    let args = |n: usize| {
        prost::Message::encode_to_vec(&specs::KernelArgsSpec {
            args: (0..n).map(|i| format!("a{i}")).collect(),
        })
    };
    invalid(
        h.create(res("KernelArgs.omni.sidero.dev", "k", args(65), &[]))
            .await
            .unwrap_err(),
        "too many kernel args",
    );
    h.create(res("KernelArgs.omni.sidero.dev", "k", args(2), &[]))
        .await
        .unwrap();

    let many: Vec<(String, String)> = (0..257)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    invalid(
        h.create(res("MachineLabels.omni.sidero.dev", "m", vec![], &refs))
            .await
            .unwrap_err(),
        "too many labels",
    );
    invalid(
        h.create(res("MachineLabels.omni.sidero.dev", "", vec![], &[]))
            .await
            .unwrap_err(),
        "resource ID must not be empty",
    );
    h.emu.shutdown().await;
}
