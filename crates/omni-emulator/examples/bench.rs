//! Throughput and memory benchmark of the emulator (not a test).
//!
//! ```text
//! cargo build -p omni-emulator --profile perf --bin omni-emulator --example bench
//! target/perf/examples/bench [--clients 8] [--resources 10000] [--seconds 5]
//! ```
//!
//! Starts the real binary (durability on: every write is fsync'd before it is acknowledged),
//! then measures signed Creates/s and Gets/s from concurrent gRPC clients and the server's RSS
//! with the resources stored.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use omni_api::cosi::resource::{self as pb, state_client::StateClient};
use omni_emulator::signer::Signer;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn patch(id: &str) -> pb::Resource {
    let spec = omni_api::specs::ConfigPatchSpec {
        data: format!("machine:\n  network:\n    hostname: {id}\n"),
        compressed_data: vec![],
    };
    pb::Resource {
        metadata: Some(pb::Metadata {
            namespace: "default".into(),
            r#type: "ConfigPatches.omni.sidero.dev".into(),
            id: id.into(),
            version: "undefined".into(),
            phase: "running".into(),
            ..Default::default()
        }),
        spec: Some(pb::Spec {
            proto_spec: prost::Message::encode_to_vec(&spec),
            yaml_spec: String::new(),
        }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = arg("--clients", 8) as usize;
    let resources = arg("--resources", 10_000) as usize;
    let seconds = arg("--seconds", 5);
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("omni-emulator"))
        .context("locating the omni-emulator binary")?;
    let dir = tempfile::tempdir()?;
    // Prefer the real binary (RSS is then the server's alone); `cargo run --example` does not
    // build it, so fall back to an in-process emulator (RSS then includes the clients).
    let mut child = None;
    let mut in_process = None;
    let (endpoint, pid) = if bin.exists() {
        let mut c = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--machines", "10", "--data-dir"])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = c.id();
        let mut lines = BufReader::new(c.stderr.take().context("stderr")?).lines();
        let endpoint = loop {
            let line = lines.next().context("emulator exited")??;
            if let Some(e) = line.strip_prefix("listening on ") {
                break e.to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        child = Some(c);
        (endpoint, pid)
    } else {
        let emu = omni_emulator::Emulator::builder()
            .machines(10)
            .data_dir(dir.path())
            .start()
            .await?;
        let e = emu.endpoint().to_string();
        in_process = Some(emu);
        (e, std::process::id())
    };
    let key = std::fs::read_to_string(dir.path().join("service-account.key"))?;
    let signer = Signer::from_service_account_key(&key)?;
    let rss_start = rss_kib(pid);

    let mut chans = Vec::new();
    for _ in 0..clients {
        chans.push(
            tonic::transport::Endpoint::from_shared(endpoint.clone())?
                .connect()
                .await?,
        );
    }

    // Writes: each client creates its share of the resources (each acknowledged write fsync'd).
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (c, ch) in chans.iter().enumerate() {
        let (ch, signer) = (ch.clone(), signer.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = StateClient::new(ch);
            for i in (c..resources).step_by(clients) {
                let req = pb::CreateRequest {
                    resource: Some(patch(&format!("400-bench-{i:05}"))),
                    options: None,
                };
                s.create(signer.sign("/cosi.resource.State/Create", &[], tonic::Request::new(req)))
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let write_secs = t0.elapsed().as_secs_f64();
    let rss_loaded = rss_kib(pid);

    // Gets: random reads for a fixed time.
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (c, ch) in chans.iter().enumerate() {
        let (ch, signer, done) = (ch.clone(), signer.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = StateClient::new(ch);
            let mut i = c * 7919;
            while Instant::now() < deadline {
                i = (i + 104_729) % resources;
                let req = pb::GetRequest {
                    namespace: "default".into(),
                    r#type: "ConfigPatches.omni.sidero.dev".into(),
                    id: format!("400-bench-{i:05}"),
                    options: None,
                };
                s.get(signer.sign("/cosi.resource.State/Get", &[], tonic::Request::new(req)))
                    .await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let gets = done.load(Ordering::Relaxed) as f64 / seconds as f64;
    let rss_end = rss_kib(pid);

    let mode = if child.is_some() {
        "separate server process"
    } else {
        "in-process server (RSS includes clients)"
    };
    println!(
        "{mode}; clients: {clients}, resources: {resources}, durability: fsync per group commit"
    );
    println!(
        "writes: {:.0}/s ({resources} signed Creates in {write_secs:.2}s)",
        resources as f64 / write_secs
    );
    println!("gets:   {gets:.0}/s (signed, {seconds}s)");
    println!(
        "RSS: {:.1} MiB at start, {:.1} MiB with {resources} resources, {:.1} MiB after the read phase",
        rss_start as f64 / 1024.0,
        rss_loaded as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
    if let Some(mut c) = child {
        c.kill()?;
        c.wait()?;
    }
    if let Some(emu) = in_process {
        emu.shutdown().await;
    }
    Ok(())
}
