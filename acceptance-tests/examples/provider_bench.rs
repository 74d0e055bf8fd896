//! Provider benchmark (`make bench`): `omni_config_patch` against a local omni-emulator versus
//! Terraform's built-in `terraform_data`, the same number of instances in the same run, plus the
//! provider's start-up (spawn to handshake) and GetProviderSchema latency.
//!
//! ```text
//! cargo run --profile perf -p acceptance-tests --example provider_bench [-- --count 500 --reps 5]
//! ```
//!
//! Goals (issue 8): refresh plan ≤ 1.5× and apply ≤ 2× of `terraform_data`.
//! Measured with the binaries of the same profile (`target/perf`), or those in `OMNI_BIN_DIR`.

use acceptance_tests::{built_binary, Omni, Workspace};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs terraform in `ws` and returns how long it took; any failure stops the bench.
fn timed(ws: &Workspace, args: &[&str]) -> R<Duration> {
    let start = Instant::now();
    let run = ws.run(args)?;
    let took = start.elapsed();
    if run.status != 0 {
        return Err(format!("terraform {args:?} failed:\n{}{}", run.stdout, run.stderr).into());
    }
    Ok(took)
}

fn main() -> std::process::ExitCode {
    match bench() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench() -> R<()> {
    let count = arg("--count", 500);
    let reps = arg("--reps", 5).max(1);
    let omni = Omni::start(0)?;
    if !omni.is_emulator() {
        return Err("the bench runs against its own emulator: unset OMNI_ENDPOINT".into());
    }
    let ours = Workspace::new(&omni)?;
    let builtin = Workspace::new(&omni)?;
    // The patches belong to a cluster, as they do in real use.
    const CLUSTER: &str = "resource \"omni_cluster\" \"bench\" {\n  name = \"bench\"\n  \
        talos_version = \"1.13.9\"\n  kubernetes_version = \"1.36.3\"\n}\n";
    ours.write_config(CLUSTER)?;
    ours.apply()?;
    ours.write_config(&format!(
        "{CLUSTER}\n\
         resource \"omni_config_patch\" \"p\" {{\n  count = {count}\n  cluster = \"bench\"\n  name = \"p${{count.index}}\"\n  \
         data = yamlencode({{ machine = {{ sysctls = {{ \"net.core.somaxconn\" = tostring(1024 + count.index) }} }} }})\n}}\n"
    ))?;
    // terraform_data needs no provider: no required_providers block, so Terraform starts
    // nothing for this baseline.
    std::fs::write(
        builtin.path().join("main.tf"),
        format!(
            "resource \"terraform_data\" \"p\" {{\n  count = {count}\n  input = {{ idx = count.index }}\n}}\n"
        ),
    )?;

    println!(
        "provider benchmark: {count} omni_config_patch (emulator) vs {count} terraform_data, \
         {reps} repetition(s), median reported"
    );
    let plan = ["plan", "-no-color", "-input=false", "-lock=false"];
    let apply = ["apply", "-auto-approve", "-no-color", "-input=false"];
    // Destroy only the patches, so every repetition starts from the same state.
    let destroy_ours = [
        "destroy",
        "-auto-approve",
        "-no-color",
        "-input=false",
        "-target=omni_config_patch.p",
    ];
    let destroy_builtin = ["destroy", "-auto-approve", "-no-color", "-input=false"];
    // Warm-up: the first runs pay for the page cache and Terraform's own start.
    timed(&ours, &plan)?;
    timed(&builtin, &plan)?;
    let mut t: [[Vec<Duration>; 3]; 2] = Default::default();
    for rep in 0..reps {
        for (i, (ws, destroy)) in [(&ours, &destroy_ours[..]), (&builtin, &destroy_builtin[..])]
            .into_iter()
            .enumerate()
        {
            t[i][0].push(timed(ws, &plan)?);
            t[i][1].push(timed(ws, &apply)?);
            t[i][2].push(timed(ws, &plan)?);
            timed(ws, destroy)?;
        }
        eprintln!("  repetition {} done", rep + 1);
    }

    println!();
    println!("| measurement | omni_config_patch | terraform_data | ratio | goal |");
    println!("|---|---|---|---|---|");
    let names = ["plan from empty", "apply", "refresh plan"];
    let goals = [None, Some(2.0), Some(1.5)];
    for k in 0..3 {
        let a = median(t[0][k].clone());
        let b = median(t[1][k].clone());
        let ratio = a.as_secs_f64() / b.as_secs_f64();
        let goal = match goals[k] {
            Some(g) => format!("≤ {g:.1}x {}", ok(ratio <= g)),
            None => String::new(),
        };
        println!(
            "| {} | {:.0} ms | {:.0} ms | {ratio:.2}x | {goal} |",
            names[k],
            ms(a),
            ms(b)
        );
    }

    let exe = built_binary("terraform-provider-omni");
    let start = handshake_times(&exe, 30)?;
    let (first, warm) = schema_times(&exe, 30)?;
    println!();
    println!("| provider measurement | median |");
    println!("|---|---|");
    println!("| start to handshake | {:.2} ms |", ms(start));
    println!(
        "| GetProviderSchema, first call (connect included) | {:.2} ms |",
        ms(first)
    );
    println!("| GetProviderSchema, warm | {:.3} ms |", ms(warm));
    Ok(())
}

fn ok(b: bool) -> &'static str {
    if b {
        "ok"
    } else {
        "MISSED"
    }
}

/// Spawns the provider as Terraform would (plaintext, no AutoMTLS) and waits for the handshake.
fn spawn(exe: &Path, tcp: bool) -> R<(std::process::Child, String, Duration)> {
    let mut cmd = Command::new(exe);
    cmd.env(tfplugin::MAGIC_COOKIE_KEY, tfplugin::MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env_remove("TF_LOG")
        .env_remove("PLUGIN_CLIENT_CERT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if tcp {
        cmd.env("TF_PLUGIN_TRANSPORT", "tcp");
    }
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let took = start.elapsed();
    if !line.starts_with("1|6|") {
        let _ = child.kill();
        return Err(format!("unexpected handshake line {line:?}").into());
    }
    Ok((child, line.trim_end().to_string(), took))
}

fn handshake_times(exe: &Path, n: usize) -> R<Duration> {
    let mut v = Vec::new();
    for _ in 0..n {
        let (mut child, _, took) = spawn(exe, false)?;
        v.push(took);
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(median(v))
}

/// GetProviderSchema over plaintext TCP: the first call (connect included) and warm calls.
fn schema_times(exe: &Path, n: usize) -> R<(Duration, Duration)> {
    let (mut child, line, _) = spawn(exe, true)?;
    let addr = line.split('|').nth(3).ok_or("no address")?.to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        use tfplugin::proto::tfplugin6::{get_provider_schema, provider_client::ProviderClient};
        let start = Instant::now();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let mut client =
            ProviderClient::new(channel).max_decoding_message_size(tfplugin::MAX_MESSAGE_SIZE);
        let resp = client
            .get_provider_schema(get_provider_schema::Request {})
            .await?;
        let first = start.elapsed();
        if !resp
            .get_ref()
            .resource_schemas
            .contains_key("omni_config_patch")
        {
            return Err::<_, Box<dyn std::error::Error>>("schema lacks omni_config_patch".into());
        }
        let mut v = Vec::new();
        for _ in 0..n {
            let s = Instant::now();
            client
                .get_provider_schema(get_provider_schema::Request {})
                .await?;
            v.push(s.elapsed());
        }
        Ok((first, median(v)))
    });
    let _ = child.kill();
    let _ = child.wait();
    result
}
