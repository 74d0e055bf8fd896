//! Direct gRPC calls against the test provider process: schema contents,
//! capabilities, identity, state upgrade, message limits, UNIMPLEMENTED for
//! RPCs newer than 6.9, and shutdown through GRPCController.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tfplugin::proto::plugin::{grpc_controller_client::GrpcControllerClient, Empty};
use tfplugin::proto::tfplugin6 as pb;
use tfplugin::proto::tfplugin6::provider_client::ProviderClient;
use tfplugin::value::{decode, encode};
use tfplugin::{Dynamic, Type};
use tonic::transport::Channel;

const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-tfptest");

struct Plugin {
    child: Child,
    addr: String,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Plugin {
    let mut child = Command::new(PROVIDER_BIN)
        .env(tfplugin::MAGIC_COOKIE_KEY, tfplugin::MAGIC_COOKIE_VALUE)
        .env("TF_PLUGIN_TRANSPORT", "tcp")
        .env_remove("PLUGIN_CLIENT_CERT")
        .env_remove("TF_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.split('|').nth(3).unwrap().to_string();
    Plugin { child, addr }
}

async fn channel(p: &Plugin) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", p.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn client(ch: Channel) -> ProviderClient<Channel> {
    ProviderClient::new(ch)
        .max_decoding_message_size(tfplugin::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(tfplugin::MAX_MESSAGE_SIZE)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn file_type(schema: &pb::get_provider_schema::Response) -> Type {
    // Rebuild the object type from the wire schema, as Terraform does.
    let block = schema.resource_schemas["tfptest_file"]
        .block
        .as_ref()
        .unwrap();
    let mut attrs = std::collections::BTreeMap::new();
    for a in &block.attributes {
        let t = match &a.nested_type {
            None => Type::from_json_bytes(&a.r#type).unwrap(),
            Some(obj) => {
                let inner = Type::object(
                    obj.attributes
                        .iter()
                        .map(|n| (n.name.clone(), Type::from_json_bytes(&n.r#type).unwrap())),
                );
                assert_eq!(obj.nesting, pb::schema::object::NestingMode::List as i32);
                Type::list(inner)
            }
        };
        attrs.insert(a.name.clone(), t);
    }
    Type::Object(attrs)
}

#[test]
fn schema_capabilities_and_attribute_flags() {
    let p = start();
    rt().block_on(async {
        let mut c = client(channel(&p).await);
        let s = c
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        let caps = s.server_capabilities.unwrap();
        assert!(caps.get_provider_schema_optional && caps.plan_destroy && caps.move_resource_state);
        let block = s.resource_schemas["tfptest_file"].block.as_ref().unwrap();
        let names: Vec<&str> = block.attributes.iter().map(|a| a.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "attributes are sent sorted");
        let attr = |n: &str| block.attributes.iter().find(|a| a.name == n).unwrap();
        assert!(attr("password_wo").write_only && attr("password_wo").sensitive);
        assert!(attr("id").computed && !attr("id").optional);
        assert!(attr("name").required);
        assert_eq!(
            attr("name").description_kind,
            pb::StringKind::Markdown as i32
        );
        assert!(attr("rules").nested_type.is_some());
        assert!(s.ephemeral_resource_schemas.contains_key("tfptest_token"));
        assert!(s.data_source_schemas.contains_key("tfptest_file"));
        assert_eq!(
            s.functions["sum"].variadic_parameter.as_ref().unwrap().name,
            "n"
        );

        let m = c
            .get_metadata(pb::get_metadata::Request {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(m.resources.len(), 3);
        assert_eq!(m.functions.len(), 2);

        let ids = c
            .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
            .await
            .unwrap()
            .into_inner();
        let id = &ids.identity_schemas["tfptest_file"];
        assert_eq!(id.identity_attributes[0].name, "name");
        assert!(id.identity_attributes[0].required_for_import);
    });
}

#[test]
fn upgrade_state_is_lenient_and_rejects_newer_versions() {
    let p = start();
    rt().block_on(async {
        let mut c = client(channel(&p).await);
        let s = c
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        let ty = file_type(&s);
        let raw = br#"{"id":"a","name":"a","content":"hi","size":2,"removed_long_ago":true}"#;
        let r = c
            .upgrade_resource_state(pb::upgrade_resource_state::Request {
                type_name: "tfptest_file".into(),
                version: 0,
                raw_state: Some(pb::RawState {
                    json: raw.to_vec(),
                    flatmap: Default::default(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        let v = decode(&r.upgraded_state.unwrap().msgpack, &ty).unwrap();
        assert_eq!(v.get("content").and_then(Dynamic::as_str), Some("hi"));
        assert_eq!(v.get("labels"), Some(&Dynamic::Null));

        let r = c
            .upgrade_resource_state(pb::upgrade_resource_state::Request {
                type_name: "tfptest_file".into(),
                version: 7,
                raw_state: Some(pb::RawState {
                    json: raw.to_vec(),
                    flatmap: Default::default(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.diagnostics[0].summary, "State from a newer provider");

        let r = c
            .move_resource_state(pb::move_resource_state::Request {
                source_type_name: "other_thing".into(),
                target_type_name: "tfptest_file".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.diagnostics[0].summary, "Move not supported");

        let r = c
            .read_resource(pb::read_resource::Request {
                type_name: "no_such_type".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.diagnostics[0].summary, "Unknown resource type");
    });
}

#[test]
fn large_messages_pass_and_unconfigured_calls_fail_cleanly() {
    let p = start();
    rt().block_on(async {
        let mut c = client(channel(&p).await);
        let s = c
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        let ty = file_type(&s);
        // 6 MiB: above tonic's 4 MiB default, far below Terraform's 256 MiB.
        let big = "x".repeat(6 << 20);
        let config = Dynamic::object([
            ("name", Dynamic::from("a")),
            ("content", Dynamic::from(big)),
        ]);
        let dv = pb::DynamicValue {
            msgpack: encode(&config, &ty).unwrap(),
            json: vec![],
        };
        let r = c
            .validate_resource_config(pb::validate_resource_config::Request {
                type_name: "tfptest_file".into(),
                config: Some(dv.clone()),
                client_capabilities: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);

        // Planning a create echoes the 6 MiB back, unknowns filled by the framework.
        let r = c
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: "tfptest_file".into(),
                prior_state: None,
                proposed_new_state: Some(dv.clone()),
                config: Some(dv.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        let planned = decode(&r.planned_state.unwrap().msgpack, &ty).unwrap();
        assert_eq!(planned.get("size"), Some(&Dynamic::from(6i64 << 20)));
        assert!(planned.get("revision").unwrap().is_unknown());
        assert!(
            r.planned_identity.is_some(),
            "identity planned once name is known"
        );

        // Apply before ConfigureProvider: a diagnostic, not a crash.
        let r = c
            .apply_resource_change(pb::apply_resource_change::Request {
                type_name: "tfptest_file".into(),
                prior_state: None,
                planned_state: Some(dv.clone()),
                config: Some(dv),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.diagnostics[0].summary, "Provider not configured");
    });
}

#[test]
fn rpcs_newer_than_6_9_are_unimplemented_and_shutdown_ends_the_process() {
    let mut p = start();
    rt().block_on(async {
        let ch = channel(&p).await;
        // ListResource (protocol 6.10) is not in our service.
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let err = grpc
            .unary(
                tonic::Request::new(()),
                tonic::codegen::http::uri::PathAndQuery::from_static(
                    "/tfplugin6.Provider/ValidateListResourceConfig",
                ),
                codec,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unimplemented);

        let mut ctl = GrpcControllerClient::new(ch);
        ctl.shutdown(Empty {}).await.unwrap();
    });
    for _ in 0..250 {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("provider did not exit after GRPCController.Shutdown");
}

#[test]
fn stop_provider_interrupts_in_flight_work_then_the_server_winds_down() {
    let mut p = start();
    let store = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let ch = channel(&p).await;
        let mut c = client(ch.clone());
        let s = c
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        let provider_ty = Type::object([("dir".to_string(), Type::String)]);
        let cfg = Dynamic::object([("dir", Dynamic::from(store.path().display().to_string()))]);
        let r = c
            .configure_provider(pb::configure_provider::Request {
                terraform_version: "test".into(),
                config: Some(pb::DynamicValue {
                    msgpack: encode(&cfg, &provider_ty).unwrap(),
                    json: vec![],
                }),
                client_capabilities: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);

        let ty = file_type(&s);
        let planned = Dynamic::object([
            ("name", Dynamic::from("slow")),
            ("id", Dynamic::from("slow")),
            ("content", Dynamic::from("SLOW")),
            ("size", Dynamic::from(4)),
            ("revision", Dynamic::UNKNOWN),
        ]);
        let dv = pb::DynamicValue {
            msgpack: encode(&planned, &ty).unwrap(),
            json: vec![],
        };
        let mut c2 = client(ch.clone());
        let apply = tokio::spawn(async move {
            c2.apply_resource_change(pb::apply_resource_change::Request {
                type_name: "tfptest_file".into(),
                planned_state: Some(dv.clone()),
                config: Some(dv),
                ..Default::default()
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        c.stop_provider(pb::stop_provider::Request {})
            .await
            .unwrap();
        let r = apply.await.unwrap().unwrap().into_inner();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the operation saw the stop"
        );
        assert_eq!(r.diagnostics[0].summary, "Interrupted");
    });
    // With the connection gone the stopped server exits on its own.
    for _ in 0..500 {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("provider kept running after StopProvider");
}
