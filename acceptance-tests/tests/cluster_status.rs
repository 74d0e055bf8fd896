//! `omni_cluster_status`: reading a cluster's readiness, waiting (event-driven) until it is
//! healthy, timing out with a message that says what it waited for and what it saw, and the
//! errors for a missing cluster and a bad condition.

mod oob;

use acceptance_tests::{has_diagnostic, resource_values, Omni, Workspace};
use anyhow::Result;

#[test]
fn wait_until_healthy_then_read_everything() -> Result<()> {
    // Slow stages (300 ms each) so the cluster is surely not healthy when the read starts.
    let omni = Omni::start_with(&["--machines", "3", "--step-delay-ms", "300"].map(String::from))?;
    let ids = oob::machine_ids(&omni)?;
    oob::create_cluster(&omni, "lab", &ids[..1])?;
    assert_ne!(
        oob::cluster_ready(&omni, "lab")?,
        Some(true),
        "not ready yet"
    );

    let ws = Workspace::new(&omni)?;
    ws.write_config(
        r#"
data "omni_cluster_status" "lab" {
  cluster = "lab"
  wait = {
    condition = "healthy"
    timeout   = "2m"
  }
}
"#,
    )?;
    let started = std::time::Instant::now();
    ws.apply()?;
    let elapsed = started.elapsed();
    let state = ws.state()?;
    let s = resource_values(&state, "data.omni_cluster_status.lab")?;
    assert_eq!(s["id"], "lab");
    assert_eq!(s["phase"], "RUNNING");
    assert_eq!(s["ready"], true);
    assert_eq!(s["healthy"], true);
    assert_eq!(s["available"], true);
    assert_eq!(s["controlplane_ready"], true);
    assert_eq!(s["kubernetes_api_ready"], true);
    assert_eq!(s["machines"]["total"], 1);
    assert_eq!(s["machines"]["healthy"], 1);
    assert_eq!(s["talos_upgrade"]["phase"], "Done");
    assert_eq!(s["kubernetes_upgrade"]["phase"], "Done");
    let sets = s["machine_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["id"], "lab-control-planes");
    assert_eq!(sets[0]["role"], "controlplane");
    assert_eq!(sets[0]["phase"], "Running");
    assert_eq!(sets[0]["ready"], true);
    let (talos, k8s) = oob::versions(&omni)?;
    assert_eq!(s["talos_version"], talos.as_str());
    assert_eq!(s["kubernetes_version"], k8s.as_str());
    println!("healthy after {elapsed:?}");

    // Without `wait`, the status is read as it is.
    ws.write_config("data \"omni_cluster_status\" \"lab\" {\n  cluster = \"lab\"\n}\n")?;
    ws.apply()?;
    let s = resource_values(&ws.state()?, "data.omni_cluster_status.lab")?;
    assert_eq!(s["healthy"], true);
    assert!(!ws.plan_has_changes()?);
    Ok(())
}

#[test]
fn wait_that_cannot_succeed_times_out_with_a_clear_message() -> Result<()> {
    let omni = Omni::start(1)?;
    // A control-plane set without nodes is Failed in Omni: the cluster never becomes ready.
    oob::create_cluster(&omni, "empty", &[])?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(
        r#"
data "omni_cluster_status" "empty" {
  cluster = "empty"
  wait = {
    condition = "ready"
    timeout   = "3s"
  }
}
"#,
    )?;
    let started = std::time::Instant::now();
    let diags = ws.apply_expect_error()?;
    let elapsed = started.elapsed();
    // Terraform shows nested-attribute paths (`wait.timeout`) at the enclosing block, so the
    // attribute is asserted through the text.
    assert!(
        has_diagnostic(
            &diags,
            r#"Timed out waiting for cluster \\"empty\\" to be ready"#,
            None
        ),
        "{diags:#?}"
    );
    let detail = diags[0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("Gave up after 3s"), "{detail}");
    assert!(
        detail.contains("every machine set ready"),
        "says what it waited for: {detail}"
    );
    assert!(
        detail.contains("Last seen: phase"),
        "says what it saw: {detail}"
    );
    assert!(
        detail.contains("control plane machine set must have at least one node"),
        "names the blocking machine set: {detail}"
    );
    assert!(detail.contains("wait.timeout"), "{detail}");
    assert!(
        elapsed < std::time::Duration::from_secs(30),
        "bounded by the timeout, took {elapsed:?}"
    );

    // `available` does not hold either (no control-plane machine), `running` does not: the
    // same for a cluster that does not exist at all, which is waited for, not an error.
    ws.write_config(
        r#"
data "omni_cluster_status" "ghost" {
  cluster = "ghost"
  wait = {
    condition = "available"
    timeout   = "1s"
  }
}
"#,
    )?;
    let diags = ws.apply_expect_error()?;
    assert!(
        has_diagnostic(&diags, "no status in Omni yet", None),
        "{diags:#?}"
    );
    Ok(())
}

#[test]
fn missing_cluster_and_bad_condition_are_errors_at_the_attribute() -> Result<()> {
    let omni = Omni::start(1)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config("data \"omni_cluster_status\" \"x\" {\n  cluster = \"nope\"\n}\n")?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "Cluster not found", Some("cluster")),
        "{diags:#?}"
    );

    ws.write_config(
        "data \"omni_cluster_status\" \"x\" {\n  cluster = \"nope\"\n  wait = {\n    condition = \"green\"\n  }\n}\n",
    )?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "Invalid wait condition", None),
        "{diags:#?}"
    );
    ws.write_config(
        "data \"omni_cluster_status\" \"x\" {\n  cluster = \"nope\"\n  wait = {\n    condition = \"ready\"\n    timeout   = \"soon\"\n  }\n}\n",
    )?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "Invalid wait timeout", None),
        "{diags:#?}"
    );
    Ok(())
}
