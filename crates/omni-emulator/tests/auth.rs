//! Request signatures and roles (omni-api.md §2.3, §1.7).

mod common;

use common::*;
use omni_api::cosi::resource as pb;
use omni_emulator::keys::Role;
use omni_emulator::signer::Signer;
use tonic::{Code, Request};

fn get_req() -> pb::GetRequest {
    pb::GetRequest {
        namespace: "ephemeral".into(),
        r#type: "SysVersions.system.sidero.dev".into(),
        id: "current".into(),
        options: Some(Default::default()),
    }
}

fn with_headers<T>(mut r: Request<T>, h: Vec<(String, String)>) -> Request<T> {
    for (k, v) in h {
        r.metadata_mut().insert(
            tonic::metadata::MetadataKey::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

const GET: &str = "/cosi.resource.State/Get";

#[tokio::test]
async fn signature_failures_are_invalid_signature() {
    let h = start(0).await;
    let mut c = h.state.clone();
    // signed call works
    c.get(h.signer.sign(GET, &[], Request::new(get_req())))
        .await
        .unwrap();

    let expect_unauth = |r: Result<tonic::Response<pb::GetResponse>, tonic::Status>| {
        let e = r.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        assert_eq!(e.message(), "invalid signature");
    };
    // unsigned
    expect_unauth(c.get(Request::new(get_req())).await);
    // unknown key
    let stranger = omni_emulator::keys::generate("stranger", Role::Admin, 3600).unwrap();
    let s = Signer::from_service_account_key(&stranger.service_account_key).unwrap();
    expect_unauth(c.get(s.sign(GET, &[], Request::new(get_req()))).await);
    // signed for another method
    expect_unauth(
        c.get(
            h.signer
                .sign("/cosi.resource.State/List", &[], Request::new(get_req())),
        )
        .await,
    );
    // a signed header changed after signing
    let now = omni_emulator::model::Time::now().secs;
    let mut hdrs = h.signer.headers_at(GET, &[("cluster", "a")], now);
    hdrs.push(("cluster".into(), "b".into()));
    expect_unauth(c.get(with_headers(Request::new(get_req()), hdrs)).await);
    // a signed header added without being signed
    let mut hdrs = h.signer.headers_at(GET, &[], now);
    hdrs.push(("context".into(), "x".into()));
    expect_unauth(c.get(with_headers(Request::new(get_req()), hdrs)).await);
    // stale and future timestamps (±5 min)
    expect_unauth(
        c.get(with_headers(
            Request::new(get_req()),
            h.signer.headers_at(GET, &[], now - 400),
        ))
        .await,
    );
    expect_unauth(
        c.get(with_headers(
            Request::new(get_req()),
            h.signer.headers_at(GET, &[], now + 400),
        ))
        .await,
    );
    c.get(with_headers(
        Request::new(get_req()),
        h.signer.headers_at(GET, &[], now - 200),
    ))
    .await
    .unwrap();
    // payload tampered after signing
    let mut hdrs = h.signer.headers_at(GET, &[], now);
    // still valid JSON with the right method, but not the bytes that were signed
    hdrs[1].1 = hdrs[1].1.replacen("{\"headers\"", "{ \"headers\"", 1);
    assert!(hdrs[1].1.starts_with("{ \"headers\""));
    expect_unauth(c.get(with_headers(Request::new(get_req()), hdrs)).await);
    // wrong scheme
    let mut hdrs = h.signer.headers_at(GET, &[], now);
    hdrs[2].1 = hdrs[2].1.replacen("siderov1", "siderov2", 1);
    expect_unauth(c.get(with_headers(Request::new(get_req()), hdrs)).await);
    h.emu.shutdown().await;
}

#[tokio::test]
async fn reader_cannot_write() {
    let h = start(0).await;
    let key = h
        .emu
        .create_service_account("reader", Role::Reader)
        .unwrap();
    let reader = Signer::from_service_account_key(&key).unwrap();
    let mut c = h.state.clone();
    c.get(reader.sign(GET, &[], Request::new(get_req())))
        .await
        .unwrap();
    let err = c
        .create(reader.sign(
            "/cosi.resource.State/Create",
            &[],
            Request::new(pb::CreateRequest {
                resource: Some(res("MachineLabels.omni.sidero.dev", "x", vec![], &[])),
                options: Some(Default::default()),
            }),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("insufficient role: \"Reader\""),
        "{}",
        err.message()
    );
    assert!(err.message().starts_with("failed to validate: "));
    h.emu.shutdown().await;
}

#[tokio::test]
async fn cli_created_key_is_accepted_by_running_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let h = start_with(omni_emulator::Emulator::builder().data_dir(dir.path())).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_omni-emulator"))
        .args(["service-account", "create", "--data-dir"])
        .arg(dir.path())
        .args(["--name", "ci", "--role", "Operator"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap();
    let s = Signer::from_service_account_key(key.trim()).unwrap();
    let mut c = h.state.clone();
    c.get(s.sign(GET, &[], Request::new(get_req())))
        .await
        .unwrap();
    h.emu.shutdown().await;
}
