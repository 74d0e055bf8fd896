//! Management API, JSON ResourceService, the `/api/` gateway and factory routing (§6, §11).

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use omni_api::management::{self as mg, management_service_client::ManagementServiceClient};
use omni_api::omni::resources::{self as rs, resource_service_client::ResourceServiceClient};
use omni_api::specs;
use omni_emulator::keys::Role;
use omni_emulator::signer::Signer;
use tonic::{Code, Request};

async fn ready_cluster(h: &Harness, name: &str) {
    h.create(res(t::CLUSTER, name, cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    h.wait_for(t::KUS, name, 10, |r| {
        dec::<specs::KubernetesUpgradeStatusSpec>(r).last_upgrade_version == "1.35.0"
    })
    .await;
}

#[tokio::test]
async fn management_calls() {
    let h = start_pinned(0).await;
    ready_cluster(&h, "m1").await;
    let mut m = ManagementServiceClient::new(h.channel.clone());
    let sign = |method: &str, ctx: &[(&str, &str)]| {
        MSign(
            h.signer.clone(),
            format!("/management.ManagementService/{method}"),
            ctx.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    };

    // kubeconfig needs the cluster header, which is signed
    let kc = m
        .kubeconfig(sign("Kubeconfig", &[("context", "m1")]).req(mg::KubeconfigRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .kubeconfig;
    let text = String::from_utf8(kc).unwrap();
    assert!(text.contains("omni-emulator-m1"), "{text}");
    let err = m
        .kubeconfig(sign("Kubeconfig", &[]).req(mg::KubeconfigRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // service-account kubeconfig
    let req = mg::KubeconfigRequest {
        service_account: true,
        service_account_ttl: Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        service_account_user: "ci".into(),
        service_account_groups: vec!["system:masters".into()],
        ..Default::default()
    };
    let kc = m
        .kubeconfig(sign("Kubeconfig", &[("cluster", "m1")]).req(req.clone()))
        .await
        .unwrap()
        .into_inner()
        .kubeconfig;
    let doc: serde_json::Value = serde_norway::from_slice(&kc).unwrap();
    assert_eq!(doc["current-context"], "omni-emulator-m1");
    assert!(
        doc["users"][0]["user"]["token"]
            .as_str()
            .unwrap()
            .split('.')
            .count()
            == 3
    );
    let mut bad = req.clone();
    bad.service_account_ttl = Some(prost_types::Duration {
        seconds: 11 * 365 * 86400,
        nanos: 0,
    });
    assert_eq!(
        m.kubeconfig(sign("Kubeconfig", &[("cluster", "m1")]).req(bad))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    let tc = m
        .talosconfig(
            sign("Talosconfig", &[("context", "m1")]).req(mg::TalosconfigRequest::default()),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(String::from_utf8(tc.talosconfig)
        .unwrap()
        .contains("omni-emulator@serviceaccount.omni.sidero.dev"));
    let oc = m
        .omniconfig(sign("Omniconfig", &[]).req(()))
        .await
        .unwrap()
        .into_inner();
    assert!(String::from_utf8(oc.omniconfig)
        .unwrap()
        .contains(h.emu.endpoint()));

    // ValidateConfig uses the config patch rules, with the plain message
    m.validate_config(sign("ValidateConfig", &[]).req(mg::ValidateConfigRequest {
        config: "machine:\n  network:\n    hostname: x\n".into(),
    }))
    .await
    .unwrap();
    let e = m
        .validate_config(sign("ValidateConfig", &[]).req(mg::ValidateConfigRequest {
            config: "cluster:\n  clusterName: x\n".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("cluster.clusterName"),
        "{}",
        e.message()
    );
    assert!(!e.message().starts_with("failed to validate"));

    // upgrade pre-checks
    let ok = m
        .kubernetes_upgrade_pre_checks(
            sign("KubernetesUpgradePreChecks", &[("context", "m1")]).req(
                mg::KubernetesUpgradePreChecksRequest {
                    new_version: "1.35.1".into(),
                },
            ),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(ok.ok);
    let e = m
        .kubernetes_upgrade_pre_checks(
            sign("KubernetesUpgradePreChecks", &[("context", "m1")]).req(
                mg::KubernetesUpgradePreChecksRequest {
                    new_version: "1.38.0".into(),
                },
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // schematics: extensions sorted and de-duplicated, META keys limited
    let r = m
        .create_schematic(
            sign("CreateSchematic", &[]).req(mg::CreateSchematicRequest {
                extensions: vec![
                    "siderolabs/b".into(),
                    "siderolabs/a".into(),
                    "siderolabs/b".into(),
                ],
                talos_version: "v1.13.0".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.schematic_id.len(), 64);
    let a = r.schematic_yml.find("siderolabs/a").unwrap();
    let b = r.schematic_yml.find("siderolabs/b").unwrap();
    assert!(
        a < b && r.schematic_yml.matches("siderolabs/b").count() == 1,
        "{}",
        r.schematic_yml
    );
    assert!(!r.pxe_url.is_empty());
    let mut meta = std::collections::HashMap::new();
    meta.insert(11u32, "x".to_string());
    let e = m
        .create_schematic(
            sign("CreateSchematic", &[]).req(mg::CreateSchematicRequest {
                meta_values: meta,
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // service accounts: create with a fresh key, list, use it, destroy
    let g = omni_emulator::keys::generate("bot", Role::Reader, 3600).unwrap();
    let created = m
        .create_service_account(sign("CreateServiceAccount", &[]).req(
            mg::CreateServiceAccountRequest {
                armored_pgp_public_key: g.entry.public_key.clone(),
                use_user_role: false,
                role: "Reader".into(),
                name: "bot".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.public_key_id, g.entry.fingerprint);
    let list = m
        .list_service_accounts(sign("ListServiceAccounts", &[]).req(()))
        .await
        .unwrap()
        .into_inner();
    let bot = list
        .service_accounts
        .iter()
        .find(|s| s.name == "bot")
        .unwrap();
    assert_eq!(bot.role, "Reader");
    let bot_signer = Signer::from_service_account_key(&g.service_account_key).unwrap();
    let mut bm = ManagementServiceClient::new(h.channel.clone());
    let e = bm
        .list_service_accounts(bot_signer.sign(
            "/management.ManagementService/ListServiceAccounts",
            &[],
            Request::new(()),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    m.destroy_service_account(
        sign("DestroyServiceAccount", &[])
            .req(mg::DestroyServiceAccountRequest { name: "bot".into() }),
    )
    .await
    .unwrap();
    let e = bm
        .omniconfig(bot_signer.sign(
            "/management.ManagementService/Omniconfig",
            &[],
            Request::new(()),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    h.emu.shutdown().await;
}

#[tokio::test]
async fn resource_service_json() {
    let h = start_pinned(0).await;
    let mut r = ResourceServiceClient::new(h.channel.clone());
    let sign = |method: &str| {
        RSign(
            h.signer.clone(),
            format!("/omni.resources.ResourceService/{method}"),
        )
    };
    let md = omni_api::cosi::resource::Metadata {
        namespace: "default".into(),
        r#type: t::CLUSTER.into(),
        id: "j1".into(),
        ..Default::default()
    };
    r.create(sign("Create").req(rs::CreateRequest {
        resource: Some(rs::Resource {
            metadata: Some(md.clone()),
            spec: r#"{"talos_version":"1.13.0","kubernetes_version":"1.35.0"}"#.into(),
        }),
    }))
    .await
    .unwrap();
    let got = r
        .get(sign("Get").req(rs::GetRequest {
            namespace: "default".into(),
            r#type: t::CLUSTER.into(),
            id: "j1".into(),
        }))
        .await
        .unwrap()
        .into_inner()
        .body;
    let v: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(v["spec"]["talos_version"], "1.13.0");
    assert!(v["metadata"]["version"].is_number());
    assert_eq!(v["metadata"]["phase"], "running");
    let list = r
        .list(sign("List").req(rs::ListRequest {
            namespace: "default".into(),
            r#type: t::CLUSTER.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.total, 1);
    // missing runtime metadata
    let e = r
        .get(h.signer.sign(
            "/omni.resources.ResourceService/Get",
            &[],
            Request::new(rs::GetRequest::default()),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "missing runtime metadata")
    );
    // invalid spec goes through the same validation
    let e = r
        .create(sign("Create").req(rs::CreateRequest {
            resource: Some(rs::Resource {
                metadata: Some(omni_api::cosi::resource::Metadata {
                    id: "j2".into(),
                    ..md.clone()
                }),
                spec: r#"{"talos_version":"9.9.9","kubernetes_version":"1.35.0"}"#.into(),
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    r.delete(sign("Delete").req(rs::DeleteRequest {
        namespace: "default".into(),
        r#type: t::CLUSTER.into(),
        id: "j1".into(),
    }))
    .await
    .unwrap();
    assert_eq!(
        h.get(t::CLUSTER, "j1").await.unwrap_err().code(),
        Code::NotFound
    );
    h.emu.shutdown().await;
}

async fn http(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, String) {
    let addr = endpoint.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr);
    for (k, v) in headers {
        b = b.header(format!("Grpc-Metadata-{k}"), v);
    }
    let resp = send
        .send_request(b.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[tokio::test]
async fn http_gateway_crud_with_signed_metadata_headers() {
    let h = start_pinned(0).await;
    let ep = h.emu.endpoint().to_string();
    let signed = |method: &str| {
        h.signer
            .headers(&format!("/cosi.resource.State/{method}"), &[])
    };
    let cluster = serde_json::json!({"resource": {
        "metadata": {"namespace": "default", "type": t::CLUSTER, "id": "g1", "version": "undefined", "phase": "running"},
        "spec": {"proto_spec": base64_of(&cluster_spec("1.13.0", "1.35.0"))}
    }});
    let (st, body) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/Create",
        &signed("Create"),
        &cluster.to_string(),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["resource"]["metadata"]["version"], "1");
    assert!(v["resource"]["spec"]["yaml_spec"]
        .as_str()
        .unwrap()
        .contains("talos_version: 1.13.0"));

    let get =
        serde_json::json!({"namespace": "default", "type": t::CLUSTER, "id": "g1"}).to_string();
    let (st, body) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/Get",
        &signed("Get"),
        &get,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let mut res: serde_json::Value = serde_json::from_str(&body).unwrap();
    // unsigned → 401 with the gRPC code in the body
    let (st, body) = http(&ep, "POST", "/api/cosi.resource.State/Get", &[], &get).await;
    assert_eq!(st, 401);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
        16
    );
    // a header signed for another method is refused
    let (st, _) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/Get",
        &signed("List"),
        &get,
    )
    .await;
    assert_eq!(st, 401);

    // update with labels
    let latest = h
        .wait_for(t::CLUSTER, "g1", 10, |r| {
            !r.metadata.as_ref().unwrap().finalizers.is_empty()
        })
        .await;
    res["resource"]["metadata"]["version"] =
        serde_json::json!(latest.metadata.as_ref().unwrap().version);
    res["resource"]["metadata"]["finalizers"] =
        serde_json::json!(latest.metadata.as_ref().unwrap().finalizers);
    res["resource"]["metadata"]["labels"] = serde_json::json!({"team": "a"});
    let upd = serde_json::json!({"new_resource": res["resource"], "options": {"expected_phase": "running"}});
    let (st, body) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/Update",
        &signed("Update"),
        &upd.to_string(),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    // stale version → 400 (FailedPrecondition)
    let (st, body) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/Update",
        &signed("Update"),
        &upd.to_string(),
    )
    .await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
        9
    );

    // List streams newline-delimited {"result": …}
    let list =
        serde_json::json!({"namespace": "default", "type": t::CLUSTER, "options": {}}).to_string();
    let (st, body) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/List",
        &signed("List"),
        &list,
    )
    .await;
    assert_eq!(st, 200);
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["result"]["resource"]["metadata"]["labels"]["team"],
        "a"
    );

    // Delete through TeardownAndDestroy
    let (st, body) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/TeardownAndDestroy",
        &signed("TeardownAndDestroy"),
        &get,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = http(
        &ep,
        "POST",
        "/api/cosi.resource.State/Get",
        &signed("Get"),
        &get,
    )
    .await;
    assert_eq!(st, 404);

    // the gateway also reaches the ResourceService (runtime header) and the management API
    let mut hdrs = h.signer.headers(
        "/omni.resources.ResourceService/List",
        &[("runtime", "Omni")],
    );
    hdrs.push(("runtime".into(), "Omni".into()));
    let (st, body) = http(
        &ep,
        "POST",
        "/api/omni.resources.ResourceService/List",
        &hdrs,
        &serde_json::json!({"namespace": "default", "type": "TalosVersions.omni.sidero.dev"})
            .to_string(),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["total"],
        3
    );
    let hdrs = h
        .signer
        .headers("/management.ManagementService/Omniconfig", &[]);
    let (st, body) = http(
        &ep,
        "POST",
        "/api/management.ManagementService/Omniconfig",
        &hdrs,
        "{}",
    )
    .await;
    assert_eq!(st, 200, "{body}");

    // image factory paths are served on the same listener
    let (st, body) = http(&ep, "GET", "/versions", &[], "").await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("v1."));
    h.emu.shutdown().await;
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test]
async fn extensions_become_machine_extensions_and_schematics() {
    let h = start_pinned(2).await;
    let machines = h.machine_ids().await;
    h.create(res(t::CLUSTER, "x", cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    h.create(res(
        t::MACHINE_SET,
        "x-control-planes",
        machine_set_spec(),
        &[(t::CLUSTER_LABEL, "x"), (t::CP, "")],
    ))
    .await
    .unwrap();
    h.create(res(
        t::MSN,
        &machines[0],
        vec![],
        &[
            (t::CLUSTER_LABEL, "x"),
            (t::MS_LABEL, "x-control-planes"),
            (t::CP, ""),
        ],
    ))
    .await
    .unwrap();
    let ext = |names: &[&str]| {
        prost::Message::encode_to_vec(&specs::ExtensionsConfigurationSpec {
            extensions: names.iter().map(|s| s.to_string()).collect(),
        })
    };
    h.create(res(
        t::EXT_CONFIG,
        "schematic-x",
        ext(&["iscsi-tools"]),
        &[(t::CLUSTER_LABEL, "x")],
    ))
    .await
    .unwrap();
    let me = h
        .wait_for("MachineExtensions.omni.sidero.dev", &machines[0], 10, |r| {
            dec::<specs::MachineExtensionsSpec>(r).extensions == ["siderolabs/iscsi-tools"]
        })
        .await;
    assert_eq!(
        me.metadata.unwrap().labels["omni.sidero.dev/root-configuration"],
        "schematic-x"
    );
    let sc = h
        .wait_for(
            "SchematicConfigurations.omni.sidero.dev",
            &machines[0],
            10,
            |_| true,
        )
        .await;
    let sc: specs::SchematicConfigurationSpec = dec(&sc);
    assert_eq!(sc.talos_version, "1.13.0");
    assert_ne!(
        sc.schematic_id,
        omni_emulator::controllers::DEFAULT_SCHEMATIC
    );
    // the extensions configuration carries the controller's finalizer
    let ec = h
        .wait_for(t::EXT_CONFIG, "schematic-x", 10, |r| {
            !r.metadata.as_ref().unwrap().finalizers.is_empty()
        })
        .await;
    assert_eq!(
        ec.metadata.unwrap().finalizers,
        ["MachineExtensionsController"]
    );
    // kernel args get a status
    h.create(res(
        "KernelArgs.omni.sidero.dev",
        &machines[1],
        prost::Message::encode_to_vec(&specs::KernelArgsSpec {
            args: vec!["quiet".into()],
        }),
        &[],
    ))
    .await
    .unwrap();
    let ks = h
        .wait_for(
            "KernelArgsStatuses.omni.sidero.dev",
            &machines[1],
            10,
            |_| true,
        )
        .await;
    let ks: specs::KernelArgsStatusSpec = dec(&ks);
    assert_eq!(ks.current_args, ["quiet"]);
    assert!(ks.current_cmdline.ends_with("quiet"));
    h.teardown_and_destroy(t::CLUSTER, "x").await.unwrap();
    assert_eq!(
        h.get(t::EXT_CONFIG, "schematic-x")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    h.emu.shutdown().await;
}

struct MSign(Signer, String, Vec<(String, String)>);

impl MSign {
    fn req<T>(&self, msg: T) -> Request<T> {
        let extra: Vec<(&str, &str)> = self
            .2
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        self.0.sign(&self.1, &extra, Request::new(msg))
    }
}

struct RSign(Signer, String);

impl RSign {
    fn req<T>(&self, msg: T) -> Request<T> {
        self.0
            .sign(&self.1, &[("runtime", "Omni")], Request::new(msg))
    }
}

/// Like Omni's grpc-go server (§1.1), the reply is gzip only when the request was: a client
/// that merely accepts gzip gets plain replies.
#[tokio::test]
async fn replies_are_gzip_only_for_gzip_requests() {
    use tonic::codec::CompressionEncoding::Gzip;
    let h = start(0).await;
    h.create(res(t::CLUSTER, "gz", cluster_spec("1.13.0", "1.35.0"), &[]))
        .await
        .unwrap();
    let get = || {
        h.req(
            "Get",
            omni_api::cosi::resource::GetRequest {
                namespace: NS.into(),
                r#type: t::CLUSTER.into(),
                id: "gz".into(),
                options: Some(Default::default()),
            },
        )
    };
    let encoding = |md: &tonic::metadata::MetadataMap| {
        md.get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut accepts = h.state.clone().accept_compressed(Gzip);
    let reply = accepts.get(get()).await.unwrap();
    assert_eq!(encoding(reply.metadata()), None);
    assert!(reply.into_inner().resource.is_some());

    let mut sends = h
        .state
        .clone()
        .accept_compressed(Gzip)
        .send_compressed(Gzip);
    let reply = sends.get(get()).await.unwrap();
    assert_eq!(encoding(reply.metadata()).as_deref(), Some("gzip"));
    assert!(reply.into_inner().resource.is_some());
}
