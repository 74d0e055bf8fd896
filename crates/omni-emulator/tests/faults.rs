//! Fault injection (`--fail-rate`), the lagging read cache (`--read-lag-ms`) and TLS.

mod common;

use std::time::Duration;

use common::*;
use omni_emulator::Emulator;
use tonic::Code;

const LABELS: &str = "MachineLabels.omni.sidero.dev";

#[tokio::test]
async fn fail_rate_loses_some_replies_after_applying_the_write() {
    let h = start_with(Emulator::builder().fail_rate(0.5).seed(7)).await;
    let (mut unavailable, mut lost_reply) = (0, 0);
    for i in 0..60 {
        let id = format!("f{i}");
        loop {
            match h.create(res(LABELS, &id, vec![], &[])).await {
                Ok(_) => break,
                Err(e) if e.code() == Code::Unavailable => unavailable += 1,
                // the earlier attempt was applied and only its reply was lost
                Err(e) if e.code() == Code::AlreadyExists => {
                    lost_reply += 1;
                    break;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert!(unavailable > 10, "{unavailable}");
    assert!(lost_reply > 0, "no reply was lost after a write");
    // every resource exists exactly once in the end (reads may fail too, so retry them)
    let mut all = None;
    for _ in 0..50 {
        if let Ok(v) = h.list(LABELS, vec![]).await {
            all = Some(v);
            break;
        }
    }
    assert_eq!(all.expect("a list eventually succeeds").len(), 60);
    h.emu.shutdown().await;
}

#[tokio::test]
async fn read_lag_delays_reads_but_not_the_write_response() {
    let h = start_with(Emulator::builder().read_lag(Duration::from_millis(300))).await;
    let created = h.create(res(LABELS, "lag", vec![], &[])).await.unwrap();
    assert_eq!(created.metadata.unwrap().version, "1");
    assert_eq!(
        h.get(LABELS, "lag").await.unwrap_err().code(),
        Code::NotFound
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    h.get(LABELS, "lag").await.unwrap();
    // updates still check against the primary store, not the cache
    let cur = h.get(LABELS, "lag").await.unwrap();
    let u = h.update(cur.clone()).await.unwrap();
    assert_eq!(u.metadata.unwrap().version, "2");
    assert_eq!(
        h.get(LABELS, "lag")
            .await
            .unwrap()
            .metadata
            .unwrap()
            .version,
        "1"
    );
    assert_eq!(
        h.update(cur).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    h.emu.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_calls() {
    let h = start_with(Emulator::builder().latency(Duration::from_millis(100))).await;
    let t0 = std::time::Instant::now();
    h.list(LABELS, vec![]).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(100));
    h.emu.shutdown().await;
}

#[tokio::test]
async fn serves_grpc_over_tls() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let emu = Emulator::builder()
        .data_dir(dir.path().join("data"))
        .tls(&cert, &key)
        .start()
        .await
        .unwrap();
    assert!(emu.endpoint().starts_with("https://127.0.0.1:"));
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ck.cert.pem()))
        .domain_name("localhost");
    let ch = tonic::transport::Endpoint::from_shared(emu.endpoint().to_string())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let signer =
        omni_emulator::signer::Signer::from_service_account_key(emu.service_account_key()).unwrap();
    let mut c = omni_api::cosi::resource::state_client::StateClient::new(ch);
    let r = c
        .get(signer.sign(
            "/cosi.resource.State/Get",
            &[],
            tonic::Request::new(omni_api::cosi::resource::GetRequest {
                namespace: "ephemeral".into(),
                r#type: "SysVersions.system.sidero.dev".into(),
                id: "current".into(),
                options: None,
            }),
        ))
        .await
        .unwrap();
    assert!(r.into_inner().resource.is_some());
    emu.shutdown().await;
}
