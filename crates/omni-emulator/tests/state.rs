//! `cosi.resource.State` semantics over gRPC (omni-api.md §1.5–§1.8).

mod common;

use common::*;
use omni_api::cosi::resource as pb;
use tonic::Code;

const LABELS: &str = "MachineLabels.omni.sidero.dev";

#[tokio::test]
async fn create_get_update_destroy_with_exact_errors() {
    let h = start(0).await;
    let created = h
        .create(res(LABELS, "m1", vec![], &[("a", "1")]))
        .await
        .unwrap();
    let md = created.metadata.clone().unwrap();
    assert_eq!(md.version, "1");
    assert_eq!(md.phase, "running");
    assert!(md.created.is_some());
    assert_eq!(created.spec.as_ref().unwrap().yaml_spec, "{}\n");

    let err = h.create(res(LABELS, "m1", vec![], &[])).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        err.message(),
        "resource MachineLabels.omni.sidero.dev(default/m1@1) already exists"
    );

    let got = h.get(LABELS, "m1").await.unwrap();
    assert_eq!(got.metadata.as_ref().unwrap().labels["a"], "1");

    // stale version → FailedPrecondition
    let mut upd = got.clone();
    upd.metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("b".into(), "2".into());
    let u = h.update(upd.clone()).await.unwrap();
    assert_eq!(u.metadata.as_ref().unwrap().version, "2");
    assert_eq!(u.metadata.as_ref().unwrap().created, md.created);
    let err = h.update(upd).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("update conflict: expected version \"1\", actual version \"2\""),
        "{}",
        err.message()
    );

    // bad version text → Unknown
    let mut bad = u.clone();
    bad.metadata.as_mut().unwrap().version = "".into();
    assert_eq!(h.update(bad).await.unwrap_err().code(), Code::Unknown);

    // finalizers block Destroy
    let mut f = u.clone();
    f.metadata.as_mut().unwrap().finalizers = vec!["Keep".into()];
    let f = h.update(f).await.unwrap();
    let err = h.destroy(LABELS, "m1").await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        "resource MachineLabels.omni.sidero.dev(default/m1@3) has pending finalizers [Keep]"
    );

    // teardown: not ready while the finalizer is there; expected_phase running now fails
    assert!(!h.teardown(LABELS, "m1").await.unwrap());
    let td = h.get(LABELS, "m1").await.unwrap();
    assert_eq!(td.metadata.as_ref().unwrap().phase, "tearingDown");
    let err = h.update(f).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition); // version moved on first
    let err = h.update(td.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument); // expected_phase running, actual tearingDown

    // dropping the finalizer lets the auto-destroy controller remove it (§1.5)
    let mut c = h.state.clone();
    let mut nf = td.clone();
    nf.metadata.as_mut().unwrap().finalizers.clear();
    c.update(h.req(
        "Update",
        pb::UpdateRequest {
            new_resource: Some(nf),
            options: Some(Default::default()),
        },
    ))
    .await
    .unwrap();
    for _ in 0..100 {
        if h.get(LABELS, "m1").await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let err = h.get(LABELS, "m1").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.message(),
        "resource MachineLabels.omni.sidero.dev(default/m1@undefined) doesn't exist"
    );
    assert_eq!(
        h.destroy(LABELS, "m1").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        h.teardown(LABELS, "m1").await.unwrap_err().code(),
        Code::NotFound
    );
    h.emu.shutdown().await;
}

#[tokio::test]
async fn owner_checks_and_read_only_types() {
    let h = start(1).await;
    let mut c = h.state.clone();
    let r = res(LABELS, "owned", vec![], &[]);
    c.create(h.req(
        "Create",
        pb::CreateRequest {
            resource: Some(r),
            options: Some(pb::CreateOptions {
                owner: "SomeController".into(),
            }),
        },
    ))
    .await
    .unwrap();
    let got = h.get(LABELS, "owned").await.unwrap();
    assert_eq!(got.metadata.as_ref().unwrap().owner, "SomeController");
    let err = h.update(got).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("is owned by \"SomeController\""));
    assert_eq!(
        h.destroy(LABELS, "owned").await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        h.teardown(LABELS, "owned").await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // controller-owned types are read-only
    let machines = h
        .list("MachineStatuses.omni.sidero.dev", vec![])
        .await
        .unwrap();
    assert_eq!(machines.len(), 1);
    let id = machines[0].metadata.as_ref().unwrap().id.clone();
    let err = h
        .destroy("MachineStatuses.omni.sidero.dev", &id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("only read access is permitted"),
        "{}",
        err.message()
    );
    let err = h
        .create(res("ClusterStatuses.omni.sidero.dev", "x", vec![], &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // unknown and secret types
    let err = h.get("Nope.omni.sidero.dev", "x").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("no access is permitted"));
    assert_eq!(
        h.get("Kubeconfigs.omni.sidero.dev", "x")
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    h.emu.shutdown().await;
}

#[tokio::test]
async fn list_sorted_with_label_and_id_queries() {
    use pb::label_term::Operation as O;
    let h = start(0).await;
    for (id, n, z) in [("c", "3", "b"), ("a", "10", "a"), ("b", "2", "")] {
        let mut labels = vec![("n", n)];
        if !z.is_empty() {
            labels.push(("zone", z));
        }
        h.create(res(LABELS, id, vec![], &labels)).await.unwrap();
    }
    let ids = |v: Vec<pb::Resource>| {
        v.into_iter()
            .map(|r| r.metadata.unwrap().id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(h.list(LABELS, vec![]).await.unwrap()), ["a", "b", "c"]);
    let q = |terms| vec![pb::LabelQuery { terms }];
    assert_eq!(
        ids(h
            .list(LABELS, q(vec![term("zone", O::Exists, &[], false)]))
            .await
            .unwrap()),
        ["a", "c"]
    );
    assert_eq!(
        ids(h
            .list(LABELS, q(vec![term("zone", O::Exists, &[], true)]))
            .await
            .unwrap()),
        ["b"]
    );
    assert_eq!(
        ids(h
            .list(LABELS, q(vec![term("n", O::LtNumeric, &["5"], false)]))
            .await
            .unwrap()),
        ["b", "c"]
    );
    assert_eq!(
        ids(h
            .list(LABELS, q(vec![term("n", O::Lt, &["5"], false)]))
            .await
            .unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(h
            .list(
                LABELS,
                q(vec![
                    term("zone", O::In, &["a", "b"], false),
                    term("n", O::Equal, &["3"], false)
                ])
            )
            .await
            .unwrap()),
        ["c"]
    );
    // OR of two queries
    let two = vec![
        pb::LabelQuery {
            terms: vec![term("zone", O::Equal, &["a"], false)],
        },
        pb::LabelQuery {
            terms: vec![term("n", O::Equal, &["2"], false)],
        },
    ];
    assert_eq!(ids(h.list(LABELS, two).await.unwrap()), ["a", "b"]);
    // ID regexp
    let mut c = h.state.clone();
    let mut s = c
        .list(h.req(
            "List",
            pb::ListRequest {
                namespace: NS.into(),
                r#type: LABELS.into(),
                options: Some(pb::ListOptions {
                    label_query: vec![],
                    id_query: Some(pb::IdQuery {
                        regexp: "^[bc]$".into(),
                    }),
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut got = vec![];
    while let Some(m) = s.message().await.unwrap() {
        got.push(m.resource.unwrap().metadata.unwrap().id);
    }
    assert_eq!(got, ["b", "c"]);
    let err = c
        .list(h.req(
            "List",
            pb::ListRequest {
                namespace: NS.into(),
                r#type: LABELS.into(),
                options: Some(pb::ListOptions {
                    label_query: vec![],
                    id_query: Some(pb::IdQuery { regexp: "(".into() }),
                }),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("failed to compile regexp"));
    h.emu.shutdown().await;
}

async fn next(s: &mut tonic::Streaming<pb::WatchResponse>) -> pb::WatchResponse {
    tokio::time::timeout(std::time::Duration::from_secs(5), s.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn watch_bootstrap_single_tombstone_and_api_version() {
    use pb::EventType as E;
    let h = start(0).await;
    h.create(res(LABELS, "b", vec![], &[("x", "1")]))
        .await
        .unwrap();
    h.create(res(LABELS, "a", vec![], &[])).await.unwrap();
    let mut w = h
        .watch(pb::WatchRequest {
            namespace: NS.into(),
            r#type: LABELS.into(),
            id: None,
            options: Some(pb::WatchOptions {
                bootstrap_contents: true,
                ..Default::default()
            }),
            api_version: 1,
        })
        .await
        .unwrap();
    assert!(
        next(&mut w).await.event.is_empty(),
        "first message is empty"
    );
    let e1 = next(&mut w).await.event.remove(0);
    assert_eq!(
        (e1.event_type, e1.resource.unwrap().metadata.unwrap().id),
        (E::Created as i32, "a".into())
    );
    let e2 = next(&mut w).await.event.remove(0);
    assert_eq!(e2.resource.unwrap().metadata.unwrap().id, "b");
    let b = next(&mut w).await.event.remove(0);
    assert_eq!(b.event_type, E::Bootstrapped as i32);
    assert!(b.bookmark.is_some());
    assert_eq!(b.resource.unwrap().metadata.unwrap().id, "");
    // live update carries old
    let cur = h.get(LABELS, "a").await.unwrap();
    let mut u = cur.clone();
    u.metadata
        .as_mut()
        .unwrap()
        .labels
        .insert("y".into(), "2".into());
    h.update(u).await.unwrap();
    let e = next(&mut w).await.event.remove(0);
    assert_eq!(e.event_type, E::Updated as i32);
    assert_eq!(e.old.unwrap().metadata.unwrap().version, "1");

    // single-resource watch of a missing ID → DESTROYED tombstone
    let mut s = h
        .watch(pb::WatchRequest {
            namespace: NS.into(),
            r#type: LABELS.into(),
            id: Some("zzz".into()),
            options: Some(Default::default()),
            api_version: 1,
        })
        .await
        .unwrap();
    assert!(next(&mut s).await.event.is_empty());
    let t = next(&mut s).await.event.remove(0);
    assert_eq!(t.event_type, E::Destroyed as i32);
    let md = t.resource.unwrap().metadata.unwrap();
    assert_eq!((md.id.as_str(), md.version.as_str()), ("zzz", "undefined"));

    // label-query watch rewrites: an update that stops matching becomes DESTROYED
    let mut q = h
        .watch(pb::WatchRequest {
            namespace: NS.into(),
            r#type: LABELS.into(),
            id: None,
            options: Some(pb::WatchOptions {
                bootstrap_contents: true,
                label_query: vec![pb::LabelQuery {
                    terms: vec![term("x", pb::label_term::Operation::Exists, &[], false)],
                }],
                ..Default::default()
            }),
            api_version: 0,
        })
        .await
        .unwrap();
    assert!(next(&mut q).await.event.is_empty());
    assert_eq!(
        next(&mut q).await.event[0]
            .resource
            .as_ref()
            .unwrap()
            .metadata
            .as_ref()
            .unwrap()
            .id,
        "b"
    );
    // api_version 0: no BOOTSTRAPPED event, so the next event is the live one
    let cur = h.get(LABELS, "b").await.unwrap();
    let mut u = cur.clone();
    u.metadata.as_mut().unwrap().labels.clear();
    h.update(u).await.unwrap();
    let e = next(&mut q).await.event.remove(0);
    assert_eq!(e.event_type, E::Destroyed as i32);

    // single watch with bootstrap is unimplemented
    let err = h
        .watch(pb::WatchRequest {
            namespace: NS.into(),
            r#type: LABELS.into(),
            id: Some("a".into()),
            options: Some(pb::WatchOptions {
                bootstrap_contents: true,
                ..Default::default()
            }),
            api_version: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    // a bad bookmark fails
    let err = h
        .watch(pb::WatchRequest {
            namespace: NS.into(),
            r#type: LABELS.into(),
            id: None,
            options: Some(pb::WatchOptions {
                start_from_bookmark: Some(vec![1, 2, 3]),
                ..Default::default()
            }),
            api_version: 1,
        })
        .await;
    match err {
        Err(e) => assert_eq!(e.code(), Code::FailedPrecondition),
        Ok(_) => panic!("bad bookmark accepted"),
    }
    h.emu.shutdown().await;
}

#[tokio::test]
async fn teardown_and_destroy_waits_for_finalizers() {
    let h = start(0).await;
    let mut r = res(LABELS, "t", vec![], &[]);
    r.metadata.as_mut().unwrap().finalizers = vec!["X".into()];
    h.create(r).await.unwrap();
    let h2 = std::sync::Arc::new(h);
    let hh = h2.clone();
    let task = tokio::spawn(async move { hh.teardown_and_destroy(LABELS, "t").await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!task.is_finished());
    let cur = h2.get(LABELS, "t").await.unwrap();
    assert_eq!(cur.metadata.as_ref().unwrap().phase, "tearingDown");
    let mut c = h2.state.clone();
    let mut nf = cur.clone();
    nf.metadata.as_mut().unwrap().finalizers.clear();
    c.update(h2.req(
        "Update",
        pb::UpdateRequest {
            new_resource: Some(nf),
            options: Some(Default::default()),
        },
    ))
    .await
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        h2.get(LABELS, "t").await.unwrap_err().code(),
        Code::NotFound
    );
}
