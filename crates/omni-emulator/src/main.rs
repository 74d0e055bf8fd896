//! `omni-emulator`: a local Omni.
//!
//! ```text
//! omni-emulator --listen 127.0.0.1:0 --data-dir DIR [--machines N] [--arm64-machines M]
//!               [--tls-cert F --tls-key F] [--step-delay-ms MS] [--fail-rate P]
//!               [--latency-ms MS] [--seed S] [--read-lag-ms MS]
//! omni-emulator service-account create --data-dir DIR --name N --role Reader|Operator|Admin
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use omni_emulator::keys::Role;

fn usage() -> &'static str {
    "usage:\n  omni-emulator --listen ADDR --data-dir DIR [--machines N] [--arm64-machines M] \
     [--tls-cert F --tls-key F] [--step-delay-ms MS] [--fail-rate P] [--latency-ms MS] [--seed S] \
     [--read-lag-ms MS]\n  omni-emulator service-account create --data-dir DIR --name N --role Reader|Operator|Admin"
}

/// Parses `--flag value` pairs.
fn flags(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            bail!("unexpected argument {a:?}\n{}", usage());
        };
        if name == "help" {
            println!("{}", usage());
            std::process::exit(0);
        }
        let (k, v) = match name.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (
                name.to_string(),
                it.next()
                    .with_context(|| format!("--{name} needs a value"))?
                    .clone(),
            ),
        };
        out.push((k, v));
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("service-account") {
        if args.get(1).map(String::as_str) != Some("create") {
            bail!("{}", usage());
        }
        let mut dir = None;
        let mut name = None;
        let mut role = Role::Operator;
        for (k, v) in flags(&args[2..])? {
            match k.as_str() {
                "data-dir" => dir = Some(PathBuf::from(v)),
                "name" => name = Some(v),
                "role" => role = Role::parse(&v).with_context(|| format!("unknown role {v:?}"))?,
                _ => bail!("unknown flag --{k}\n{}", usage()),
            }
        }
        let dir = dir.context("--data-dir is required")?;
        let name = name.context("--name is required")?;
        let g = omni_emulator::keys::create_in_dir(&dir, &name, role)?;
        println!("{}", g.service_account_key);
        return Ok(());
    }

    let mut b = omni_emulator::Emulator::builder();
    let mut dir = None;
    let (mut cert, mut key) = (None, None);
    for (k, v) in flags(&args)? {
        let ms = |v: &str| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(
                v.parse().with_context(|| format!("--{k}: not a number"))?,
            ))
        };
        b = match k.as_str() {
            "listen" => b.listen(v.parse().with_context(|| format!("--listen {v:?}"))?),
            "data-dir" => {
                dir = Some(PathBuf::from(&v));
                b.data_dir(v)
            }
            "machines" => b.machines(v.parse().context("--machines")?),
            "arm64-machines" => b.arm64_machines(v.parse().context("--arm64-machines")?),
            "tls-cert" => {
                cert = Some(PathBuf::from(v));
                b
            }
            "tls-key" => {
                key = Some(PathBuf::from(v));
                b
            }
            "step-delay-ms" => b.step_delay(ms(&v)?),
            "fail-rate" => {
                let p: f64 = v.parse().context("--fail-rate")?;
                if !(0.0..=1.0).contains(&p) {
                    bail!("--fail-rate must be between 0 and 1");
                }
                b.fail_rate(p)
            }
            "latency-ms" => b.latency(ms(&v)?),
            "seed" => b.seed(v.parse().context("--seed")?),
            "read-lag-ms" => b.read_lag(ms(&v)?),
            _ => bail!("unknown flag --{k}\n{}", usage()),
        };
    }
    if dir.is_none() {
        bail!("--data-dir is required\n{}", usage());
    }
    match (cert, key) {
        (Some(c), Some(k)) => b = b.tls(c, k),
        (None, None) => {}
        _ => bail!("--tls-cert and --tls-key go together"),
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OMNI_EMULATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let emu = b.start().await?;
        eprintln!("listening on {}", emu.endpoint());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        emu.shutdown().await;
        Ok(())
    })
}
