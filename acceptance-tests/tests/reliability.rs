//! Reliability suite: what happens when things go wrong. Every test prints what it tried and
//! what it found, so a CI log reads as a report.
//!
//! - a flaky Omni (`--fail-rate 0.1`): 200 config patches converge, Omni == state;
//! - the Omni process killed (`kill -9`) in the middle of an apply, restarted on the same data:
//!   the next apply converges and nothing is lost;
//! - bad credentials of every kind are refused with a clear provider error;
//! - `TF_LOG=trace` over a full lifecycle holds no key, signature or kubeconfig secret.

mod omni_view;

use acceptance_tests::examples::all_resources;
use acceptance_tests::{has_diagnostic, Omni, TfRun, Workspace};
use omni_client::resources::ConfigPatch;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A cluster and `n` cluster-wide config patches (IDs `200-cluster-<cluster>-p<i>`).
fn patches_config(cluster: &str, n: usize) -> String {
    format!(
        "resource \"omni_cluster\" \"c\" {{\n  name = \"{cluster}\"\n  talos_version = \"1.13.9\"\n  \
         kubernetes_version = \"1.36.3\"\n}}\n\n\
         resource \"omni_config_patch\" \"p\" {{\n  count = {n}\n  cluster = omni_cluster.c.name\n  \
         name = \"p${{count.index}}\"\n  \
         data = yamlencode({{ machine = {{ sysctls = {{ \"net.core.somaxconn\" = tostring(1024 + count.index) }} }} }})\n}}\n"
    )
}

/// The `id`s of every `omni_config_patch` in the state.
fn state_patch_ids(ws: &Workspace) -> anyhow::Result<Vec<String>> {
    Ok(all_resources(&ws.state()?)
        .into_iter()
        .filter(|(_, t, _)| t == "omni_config_patch")
        .map(|(_, _, v)| v["id"].as_str().unwrap_or_default().to_string())
        .collect())
}

/// Server objects == state: the same IDs, none twice in the state, none in Omni that the state
/// does not know (an orphan) and none in the state that Omni lost.
fn assert_omni_matches_state(
    omni: &Omni,
    ws: &Workspace,
    cluster: &str,
    n: usize,
) -> anyhow::Result<()> {
    let in_state = state_patch_ids(ws)?;
    let distinct: BTreeSet<&String> = in_state.iter().collect();
    let in_omni: BTreeSet<String> =
        omni_view::ids_with_prefix::<ConfigPatch>(omni, &format!("200-cluster-{cluster}-"))?
            .into_iter()
            .collect();
    let state_set: BTreeSet<String> = in_state.iter().cloned().collect();
    let orphans: Vec<&String> = in_omni.difference(&state_set).collect();
    let lost: Vec<&String> = state_set.difference(&in_omni).collect();
    println!(
        "found: {} patches in state ({} distinct), {} in Omni, orphans {:?}, lost {:?}",
        in_state.len(),
        distinct.len(),
        in_omni.len(),
        orphans,
        lost
    );
    assert_eq!(in_state.len(), n, "every configured patch is in the state");
    assert_eq!(distinct.len(), n, "no patch twice in the state");
    assert!(
        orphans.is_empty(),
        "objects in Omni the state does not know"
    );
    assert!(lost.is_empty(), "objects in the state Omni does not have");
    Ok(())
}

fn summarize(run: &TfRun) -> String {
    let diags: Vec<String> = run
        .error_diagnostics()
        .iter()
        .map(|d| {
            let detail = d["detail"].as_str().unwrap_or_default();
            format!(
                "{}: {}",
                d["summary"].as_str().unwrap_or_default(),
                detail.lines().next().unwrap_or_default()
            )
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    format!(
        "exit {}, {} error(s) {:?}",
        run.status,
        run.error_diagnostics().len(),
        diags
    )
}

/// `terraform apply`, retried at most `retries` times; returns the number of runs it took.
fn apply_with_retries(ws: &Workspace, retries: usize) -> anyhow::Result<usize> {
    for attempt in 1..=retries + 1 {
        let t = Instant::now();
        let run = ws.run(&["apply", "-auto-approve", "-input=false", "-json"])?;
        println!(
            "found: apply #{attempt}: {} in {:.1}s",
            summarize(&run),
            t.elapsed().as_secs_f64()
        );
        if run.status == 0 {
            return Ok(attempt);
        }
    }
    anyhow::bail!("apply did not converge within {} runs", retries + 1)
}

#[test]
fn flaky_omni_apply_of_200_patches_converges_without_duplicates_or_orphans() -> anyhow::Result<()> {
    let mut omni = Omni::start_with(&[
        "--machines".into(),
        "0".into(),
        "--fail-rate".into(),
        "0.1".into(),
    ])?;
    if !omni.is_emulator() {
        println!("skipped: fault injection needs the emulator");
        return Ok(());
    }
    let ws = Workspace::new(&omni)?;
    ws.write_config(&patches_config("flaky", 200))?;
    println!("tried: apply of 1 cluster + 200 config patches, 10% of Omni calls failing (half of the failed writes after they were stored)");
    let runs = apply_with_retries(&ws, 2)?;
    println!("found: converged after {runs} apply run(s)");
    // Compare with a healthy Omni: the faults are a property of the server process, so the
    // same data is checked after restarting without them.
    omni.kill9()?;
    let mut calm = omni;
    calm_restart(&mut calm)?;
    let mut ws = ws;
    ws.set_env("OMNI_ENDPOINT", &calm.endpoint);
    assert_omni_matches_state(&calm, &ws, "flaky", 200)?;
    let changes = ws.plan_has_changes()?;
    println!("found: plan after convergence has changes = {changes}");
    assert!(!changes, "a converged apply re-plans empty");
    ws.destroy()?;
    let left = omni_view::ids_with_prefix::<ConfigPatch>(&calm, "200-cluster-flaky-")?;
    println!("found: {} patches left after destroy", left.len());
    assert!(left.is_empty());
    Ok(())
}

/// Restarts the emulator on the same data directory without fault injection.
fn calm_restart(omni: &mut Omni) -> anyhow::Result<()> {
    omni.restart_with(&["--machines".into(), "0".into()])
}

#[test]
fn omni_killed_mid_apply_then_restarted_converges_and_loses_nothing() -> anyhow::Result<()> {
    // A little latency per call makes the apply long enough to be interrupted.
    let mut omni = Omni::start_with(&[
        "--machines".into(),
        "0".into(),
        "--latency-ms".into(),
        "10".into(),
    ])?;
    if !omni.is_emulator() {
        println!("skipped: killing Omni needs the emulator");
        return Ok(());
    }
    let mut ws = Workspace::new(&omni)?;
    ws.write_config(&patches_config("crash", 200))?;
    println!(
        "tried: apply of 200 patches; kill -9 of Omni once 50 exist; 1 s later Omni restarts on \
         the same data dir and address (as a supervisor would); then apply again"
    );
    let (first, killed_at, survived) =
        std::thread::scope(|s| -> anyhow::Result<(TfRun, usize, usize)> {
            let apply = s.spawn(|| ws.run(&["apply", "-auto-approve", "-input=false", "-json"]));
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut seen = 0;
            while Instant::now() < deadline && !apply.is_finished() {
                seen = omni_view::ids_with_prefix::<ConfigPatch>(&omni, "200-cluster-crash-")
                    .map(|v| v.len())
                    .unwrap_or(seen);
                if seen >= 50 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            omni.kill9()?;
            std::thread::sleep(Duration::from_secs(1));
            omni.restart_on_same_address()?;
            let survived =
                omni_view::ids_with_prefix::<ConfigPatch>(&omni, "200-cluster-crash-")?.len();
            let run = apply.join().expect("apply thread")?;
            Ok((run, seen, survived))
        })?;
    println!(
        "found: Omni killed with {killed_at} patches stored, {survived} there after the restart; \
         the interrupted apply: {}",
        summarize(&first)
    );
    assert!(killed_at >= 50, "the kill happened mid-apply");
    assert!(survived >= killed_at, "acknowledged writes survive kill -9");
    println!(
        "found: {} patches recorded in the state by the interrupted apply",
        state_patch_ids(&ws)?.len()
    );

    ws.set_env("OMNI_ENDPOINT", &omni.endpoint);
    let runs = apply_with_retries(&ws, 0)?;
    println!("found: the next apply converged in {runs} run");
    assert_omni_matches_state(&omni, &ws, "crash", 200)?;
    assert!(!ws.plan_has_changes()?, "re-plan is empty");
    Ok(())
}

mod mitm;

const CLUSTER_AUTH: &str = "resource \"omni_cluster\" \"c\" {\n  name = \"auth-check\"\n  \
    talos_version = \"1.13.9\"\n  kubernetes_version = \"1.36.3\"\n}\n";

/// One way of presenting credentials, and the provider error it must produce.
struct AuthCase {
    what: &'static str,
    key: String,
    endpoint: String,
    summary: &'static str,
}

#[test]
fn bad_credentials_are_refused_with_a_clear_provider_error() -> anyhow::Result<()> {
    use omni_emulator::keys::{self, KeyRing, Role};
    let omni = Omni::start(0)?;
    if !omni.is_emulator() {
        println!("skipped: forging keys needs the emulator");
        return Ok(());
    }
    let data_dir = omni.data_dir().expect("emulator data dir");
    let refused = "Omni refused the credentials";
    let stranger = keys::generate("stranger", Role::Admin, 3600)?;
    // Registered with this Omni, but its validity ended a minute ago.
    let expired = keys::generate("expired", Role::Admin, -60)?;
    KeyRing::open(data_dir)?.add(expired.entry.clone())?;
    let reader = omni.create_service_account("auditor", "Reader")?;
    let tamper = mitm::start(&omni.endpoint, mitm::Mode::TamperPayload)?;
    let skewed = mitm::start(
        &omni.endpoint,
        mitm::Mode::ClockBehind {
            key: omni_client::ServiceAccountKey::from_base64(&omni.service_account_key)?,
            skew_secs: 400,
        },
    )?;
    // Control: the same proxy re-signing with a clock 200 s behind (inside Omni's ±5 min
    // window) works, so the refusals below come from what was changed, not from the proxy.
    let tolerated = mitm::start(
        &omni.endpoint,
        mitm::Mode::ClockBehind {
            key: omni_client::ServiceAccountKey::from_base64(&omni.service_account_key)?,
            skew_secs: 200,
        },
    )?;
    let mut control = Workspace::new(&omni)?;
    control.set_env("OMNI_ENDPOINT", &tolerated.endpoint);
    control.write_config(CLUSTER_AUTH)?;
    println!("tried: plan through the proxy with a clock 200 s behind (control)");
    let run = control.run(&["plan", "-input=false", "-json"])?;
    println!("found: {}", summarize(&run));
    assert_eq!(run.status, 0, "the proxy forwards faithfully");

    let cases = [
        AuthCase {
            what: "no key at all (unsigned calls)",
            key: String::new(),
            endpoint: omni.endpoint.clone(),
            summary: refused,
        },
        AuthCase {
            what: "a well-formed key this Omni never issued",
            key: stranger.service_account_key.clone(),
            endpoint: omni.endpoint.clone(),
            summary: refused,
        },
        AuthCase {
            what: "a registered key that has expired",
            key: expired.service_account_key.clone(),
            endpoint: omni.endpoint.clone(),
            summary: refused,
        },
        AuthCase {
            what: "the right key, payload header altered in transit",
            key: omni.service_account_key.clone(),
            endpoint: tamper.endpoint.clone(),
            summary: refused,
        },
        AuthCase {
            what: "the right key, signed with a clock 400 s behind",
            key: omni.service_account_key.clone(),
            endpoint: skewed.endpoint.clone(),
            summary: refused,
        },
        AuthCase {
            what: "a Reader key creating a cluster",
            key: reader,
            endpoint: omni.endpoint.clone(),
            summary: "Omni denied the request",
        },
    ];
    for case in &cases {
        let mut ws = Workspace::new(&omni)?;
        ws.set_env("OMNI_ENDPOINT", &case.endpoint);
        ws.set_env("OMNI_SERVICE_ACCOUNT_KEY", &case.key);
        ws.set_env("SIDERO_SERVICE_ACCOUNT_KEY", "");
        ws.write_config(CLUSTER_AUTH)?;
        println!("tried: apply with {}", case.what);
        let run = ws.run(&["apply", "-auto-approve", "-input=false", "-json"])?;
        let diags = run.error_diagnostics();
        for d in &diags {
            println!(
                "found: exit {}: {} — {}",
                run.status,
                d["summary"].as_str().unwrap_or_default(),
                d["detail"].as_str().unwrap_or_default().replace('\n', " ")
            );
        }
        assert_ne!(run.status, 0, "{}: apply must fail", case.what);
        assert!(
            has_diagnostic(&diags, case.summary, None),
            "{}: expected {:?} in {diags:#?}",
            case.what,
            case.summary
        );
        // The diagnostic never echoes the key itself.
        if !case.key.is_empty() {
            assert!(!run.stdout.contains(&case.key) && !run.stderr.contains(&case.key));
        }
    }
    let clusters = omni_view::ids::<omni_client::resources::Cluster>(&omni)?;
    println!("found: clusters in Omni after all attempts: {clusters:?}");
    assert!(clusters.is_empty(), "no refused call created anything");
    Ok(())
}

#[test]
fn trace_log_of_a_full_lifecycle_holds_no_secret() -> anyhow::Result<()> {
    let omni = Omni::start(3)?;
    let mut ws = Workspace::new(&omni)?;
    ws.set_env("TF_LOG", "trace");
    let infra = r#"
resource "omni_cluster" "c" {
  name               = "secrets"
  talos_version      = "1.13.9"
  kubernetes_version = "1.36.3"
}

resource "omni_machine_class" "any" {
  name         = "secrets-any"
  match_labels = ["omni.sidero.dev/arch = amd64"]
}

resource "omni_machine_set" "cp" {
  cluster       = omni_cluster.c.name
  role          = "controlplane"
  machine_class = { name = omni_machine_class.any.name, size = 1 }
}

resource "omni_config_patch" "p" {
  cluster = omni_cluster.c.name
  name    = "ntp"
  data    = yamlencode({ machine = { time = { servers = ["time.example.org"] } } })
}
"#;
    // Once the cluster exists, a service-account kubeconfig (a bearer token) is issued on
    // every plan and apply.
    let kubeconfig = r#"
ephemeral "omni_kubeconfig" "ci" {
  cluster         = omni_cluster.c.name
  service_account = true
  user            = "ci"
  groups          = ["system:masters"]
}
"#;
    println!(
        "tried: apply, add a service-account kubeconfig, plan, apply, destroy with TF_LOG=trace"
    );
    ws.write_config(infra)?;
    ws.apply()?;
    ws.write_config(&format!("{infra}{kubeconfig}"))?;
    ws.plan_has_changes()?;
    ws.apply()?;
    ws.destroy()?;
    let log = ws.log_text();
    println!("found: {} bytes of trace log", log.len());
    // The log is the real thing: it covers the provider's calls and the kubeconfig being opened.
    assert!(log.len() > 100_000, "a trace log of a lifecycle is large");
    assert!(
        log.contains("OpenEphemeralResource"),
        "the kubeconfig was issued"
    );

    let key = omni.service_account_key.trim();
    let decoded = String::from_utf8(base64_decode(key)).unwrap_or_default();
    let armor_body: String = decoded
        .split("\\n")
        .filter(|l| l.len() > 40 && !l.contains("PGP"))
        .take(1)
        .collect();
    let mut forbidden: Vec<(&str, String)> = vec![
        ("the service-account key", key.to_string()),
        (
            "a piece of the service-account key",
            key[key.len() / 2..key.len() / 2 + 32].to_string(),
        ),
        ("a PGP private key armor", "PRIVATE KEY BLOCK".to_string()),
        ("a replayable request signature", "siderov1 ".to_string()),
        ("raw kubeconfig content", "kind: Config".to_string()),
        ("kubeconfig client key", "client-key-data".to_string()),
    ];
    assert!(!armor_body.is_empty(), "the key decodes to a PGP armor");
    forbidden.push(("a line of the PGP key", armor_body));
    for (what, needle) in &forbidden {
        let hit = log.contains(needle.as_str());
        println!("found: {what}: {}", if hit { "PRESENT" } else { "absent" });
        assert!(!hit, "{what} leaked into the trace log");
    }
    // Bearer tokens (JWTs) have a recognisable shape whatever their content.
    let jwt = regex::Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")?;
    let tokens = jwt.find_iter(&log).count();
    println!("found: {tokens} bearer token(s) in the log");
    assert_eq!(tokens, 0, "a token leaked into the trace log");
    Ok(())
}

/// Standard base64 (the service-account key's encoding), without a dependency for it.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
