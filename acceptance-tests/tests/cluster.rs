//! `omni_cluster` with the real terraform against the emulator (or a real Omni): lifecycle,
//! import, drift, bad inputs, and a Kubernetes upgrade of a cluster with a control plane.

use acceptance_tests::{
    has_diagnostic, import_verify, planned_actions, resource_values, Omni, Workspace,
};
use anyhow::{bail, Context, Result};
use omni_client::omni_api::specs::kubernetes_upgrade_status_spec::Phase as K8sPhase;
use omni_client::omni_api::specs::talos_upgrade_status_spec::Phase as TalosPhase;
use omni_client::resources::{
    Cluster, ClusterMachine, ClusterStatus, ClusterUuid, KubernetesUpgradeStatus, MachineSet,
    MachineStatus, TalosUpgradeStatus,
};
use omni_client::{Api, Client, ListParams, ServiceAccountKey};
use std::time::{Duration, Instant};

const ADDR: &str = "omni_cluster.test";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A client acting out of band, like a person with omnictl.
fn client(omni: &Omni, rt: &tokio::runtime::Runtime) -> Result<Client> {
    // The client's connection machinery needs the runtime it will run on.
    let _guard = rt.enter();
    let key = ServiceAccountKey::from_base64(&omni.service_account_key)?;
    Ok(Client::builder(omni.endpoint.clone())
        .service_account(key)
        .build()?)
}

fn cluster_config(name: &str, body: &str) -> String {
    format!("resource \"omni_cluster\" \"test\" {{\n  name = \"{name}\"\n{body}\n}}\n")
}

/// Polls `f` until it returns `Some`, for assertions on the emulator's controllers.
fn eventually<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        let _ = rt;
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cluster_lifecycle_import_drift_and_destroy() -> Result<()> {
    let omni = Omni::start(0)?;
    let rt = runtime();
    let c = client(&omni, &rt)?;
    let clusters = Api::<Cluster>::new(c.clone());
    let ws = Workspace::new(&omni)?;

    // Create, with a `v` on one version and not on the other.
    let v1 = cluster_config(
        "lab",
        r#"  talos_version      = "v1.13.8"
  kubernetes_version = "1.36.3"
  features = {
    enable_workload_proxy = true
  }
  backup_interval = "60m"
  labels = {
    team = "infra"
  }"#,
    );
    ws.write_config(&v1)?;
    ws.apply()?;
    let values = resource_values(&ws.state()?, ADDR)?;
    assert_eq!(values["id"], "lab");
    assert_eq!(
        values["talos_version"], "v1.13.8",
        "the configured spelling is kept"
    );
    assert_eq!(values["kubernetes_version"], "1.36.3");
    assert_eq!(values["backup_interval"], "60m");
    assert_eq!(values["features"]["enable_workload_proxy"], true);
    assert_eq!(values["features"]["disk_encryption"], false);
    let obj = rt.block_on(clusters.get("lab"))?;
    assert_eq!(
        obj.spec.talos_version, "1.13.8",
        "Omni stores versions without v"
    );
    let backup = obj.spec.backup_configuration.context("backups enabled")?;
    assert!(backup.enabled);
    assert_eq!(backup.interval.context("interval")?.seconds, 3600);
    assert_eq!(
        obj.metadata.labels.get("team").map(String::as_str),
        Some("infra")
    );
    assert_eq!(
        obj.metadata
            .annotations
            .get(omni_client::resources::annotations::MANAGED_BY_GITOPS_TOOLS)
            .map(String::as_str),
        Some("Terraform")
    );
    // Create waited until Omni accepted the cluster.
    assert!(rt
        .block_on(Api::<ClusterUuid>::new(c.clone()).get_opt("lab"))?
        .is_some());
    assert!(
        !ws.plan_has_changes()?,
        "re-plan after create must be empty"
    );

    // Import-verify: a fresh workspace importing by name plans nothing.
    // Imported values use Omni's spelling (`1.13.8`, `1h`) where the configuration wrote
    // `v1.13.8` and `60m`; they mean the same, which the required empty plan proves.
    import_verify(
        &omni,
        &v1,
        ADDR,
        "lab",
        &values,
        &["talos_version", "backup_interval"],
    )?;

    // The same configuration with the other spelling of the versions is not a change.
    ws.write_config(
        &v1.replace("v1.13.8", "1.13.8")
            .replace("\"1.36.3\"", "\"v1.36.3\""),
    )?;
    assert!(!ws.plan_has_changes()?, "a `v` alone must never be a diff");

    // Update in place.
    let v2 = cluster_config(
        "lab",
        r#"  talos_version      = "v1.13.8"
  kubernetes_version = "1.36.3"
  features = {
    enable_workload_proxy = false
    enable_node_audit_skip = true
  }
  backup_interval = "2h"
  labels = {
    team = "platform"
  }
  annotations = {
    owner = "me"
  }
  timeouts = {
    delete = "2m"
  }"#,
    );
    ws.write_config(&v2)?;
    let plan = ws.plan_json()?;
    assert_eq!(planned_actions(&plan, ADDR), vec!["update"]);
    ws.apply()?;
    let obj = rt.block_on(clusters.get("lab"))?;
    let f = obj.spec.features.context("features")?;
    assert!(!f.enable_workload_proxy && f.enable_node_audit_skip);
    assert_eq!(
        obj.spec
            .backup_configuration
            .and_then(|b| b.interval)
            .map(|d| d.seconds),
        Some(7200)
    );
    assert_eq!(
        obj.metadata.labels.get("team").map(String::as_str),
        Some("platform")
    );
    assert_eq!(
        obj.metadata.annotations.get("owner").map(String::as_str),
        Some("me")
    );
    assert!(!ws.plan_has_changes()?);

    // Out-of-band change: drift shows (plan exit 2), apply puts it back.
    rt.block_on(clusters.update("lab", |o| {
        o.metadata
            .labels
            .insert("team".into(), "someone-else".into());
        if let Some(f) = o.spec.features.as_mut() {
            f.enable_workload_proxy = true;
        }
    }))?;
    assert!(
        ws.plan_has_changes()?,
        "out-of-band change must show as drift"
    );
    ws.apply()?;
    let obj = rt.block_on(clusters.get("lab"))?;
    assert_eq!(
        obj.metadata.labels.get("team").map(String::as_str),
        Some("platform")
    );
    assert!(!obj.spec.features.context("features")?.enable_workload_proxy);
    // Omni's own metadata never shows as drift.
    rt.block_on(clusters.update("lab", |o| {
        o.metadata
            .labels
            .insert("omni.sidero.dev/some-controller".into(), "x".into());
        o.metadata
            .annotations
            .insert("omni.sidero.dev/cluster-note".into(), "y".into());
    }))?;
    assert!(
        !ws.plan_has_changes()?,
        "omni.sidero.dev/* must not cause a diff"
    );

    // Replace: a new name plans delete + create.
    let v3 = v2.replace("name = \"lab\"", "name = \"lab2\"");
    ws.write_config(&v3)?;
    let plan = ws.plan_json()?;
    assert_eq!(planned_actions(&plan, ADDR), vec!["delete", "create"]);
    ws.apply()?;
    assert!(
        rt.block_on(clusters.get_opt("lab"))?.is_none(),
        "the old cluster is gone"
    );
    assert!(rt.block_on(clusters.get_opt("lab2"))?.is_some());

    // Deleted out of band: planned for creation, re-created by apply.
    rt.block_on(clusters.teardown_and_destroy("lab2"))?;
    let plan = ws.plan_json()?;
    assert_eq!(planned_actions(&plan, ADDR), vec!["create"]);
    ws.apply()?;
    assert!(rt.block_on(clusters.get_opt("lab2"))?.is_some());
    assert!(!ws.plan_has_changes()?);

    // Destroy: nothing of ours is left.
    ws.destroy()?;
    assert!(rt
        .block_on(clusters.list(&ListParams::default()))?
        .is_empty());
    assert!(rt
        .block_on(Api::<ClusterStatus>::new(c.clone()).list(&ListParams::default()))?
        .is_empty());
    Ok(())
}

/// Bad inputs fail at plan time, naming the attribute.
#[test]
fn cluster_bad_inputs_fail_at_plan_time() -> Result<()> {
    let omni = Omni::start(0)?;
    let ws = Workspace::new(&omni)?;
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "bad name",
            r#"name = "no spaces allowed"
  talos_version = "1.13.8"
  kubernetes_version = "1.36.3""#,
            "letters, digits, dashes and underscores",
            "name",
        ),
        (
            "unknown Talos version",
            r#"name = "bad"
  talos_version = "1.13.77"
  kubernetes_version = "1.36.3""#,
            "not in this Omni's version catalogue",
            "talos_version",
        ),
        (
            "Kubernetes outside Talos' range",
            r#"name = "bad"
  talos_version = "v1.13.8"
  kubernetes_version = "1.30.1""#,
            "not compatible with Talos 1.13.8",
            "kubernetes_version",
        ),
        (
            "Kubernetes version Omni does not list for this Talos",
            r#"name = "bad"
  talos_version = "1.13.8"
  kubernetes_version = "1.36.50""#,
            "not compatible with Talos 1.13.8 in this Omni",
            "kubernetes_version",
        ),
        (
            "bad timeout",
            r#"name = "bad"
  talos_version = "1.13.8"
  kubernetes_version = "1.36.3"
  timeouts = {
    delete = "a while"
  }"#,
            "not a duration",
            // Terraform cannot place a diagnostic inside an object-typed attribute's value;
            // it points at the resource block, and the summary names the setting.
            "omni_cluster.test",
        ),
        (
            "bad backup interval",
            r#"name = "bad"
  talos_version = "1.13.8"
  kubernetes_version = "1.36.3"
  backup_interval = "48h""#,
            "accepts backup intervals from 1h to 24h",
            "backup_interval",
        ),
    ];
    let mut failures = Vec::new();
    for (what, body, pattern, attr) in cases {
        ws.write_config(&format!(
            "resource \"omni_cluster\" \"test\" {{\n  {body}\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        if !has_diagnostic(&diags, pattern, Some(attr)) {
            failures.push(format!(
                "{what}: expected /{pattern}/ at {attr}, got {diags:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Checks against the running cluster: Kubernetes one minor at a time, no Talos downgrade.
    ws.write_config(&cluster_config(
        "live",
        r#"  talos_version      = "1.12.11"
  kubernetes_version = "1.33.0""#,
    ))?;
    ws.apply()?;
    ws.write_config(&cluster_config(
        "live",
        r#"  talos_version      = "1.12.11"
  kubernetes_version = "1.35.0""#,
    ))?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(
            &diags,
            "one minor version at a time",
            Some("kubernetes_version")
        ),
        "{diags:#?}"
    );
    ws.write_config(&cluster_config(
        "live",
        r#"  talos_version      = "1.11.6"
  kubernetes_version = "1.33.0""#,
    ))?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "cannot go below", Some("talos_version")),
        "{diags:#?}"
    );
    // A name that already exists in Omni is caught before apply.
    let other = Workspace::new(&omni)?;
    other.write_config(&cluster_config(
        "live",
        r#"  talos_version      = "1.12.11"
  kubernetes_version = "1.33.0""#,
    ))?;
    let diags = other.plan_expect_error()?;
    assert!(
        has_diagnostic(&diags, "already has a cluster", Some("name")),
        "{diags:#?}"
    );
    // Destroy plans with the configuration too, so put a valid one back first.
    ws.write_config(&cluster_config(
        "live",
        r#"  talos_version      = "1.12.11"
  kubernetes_version = "1.33.0""#,
    ))?;
    ws.destroy()?;
    assert!(rt_free_cluster_gone(&omni, "live")?);
    Ok(())
}

/// Whether `name` is gone from Omni (for tests that have no runtime of their own).
fn rt_free_cluster_gone(omni: &Omni, name: &str) -> Result<bool> {
    let rt = runtime();
    let c = client(omni, &rt)?;
    Ok(rt.block_on(Api::<Cluster>::new(c).get_opt(name))?.is_none())
}

/// Upgrades of a cluster with a control plane (`omni_machine_set` + `omni_machine_set_node`):
/// apply returns only once Omni reports each
/// upgrade done with the new version, which the machine itself then runs. The emulator's steps
/// are slowed down so that an apply that did not wait would be caught.
#[test]
fn live_cluster_upgrades_wait_until_done() -> Result<()> {
    let omni = Omni::start_with(&[
        "--machines".to_string(),
        "1".to_string(),
        "--step-delay-ms".to_string(),
        "300".to_string(),
    ])?;
    let rt = runtime();
    let c = client(&omni, &rt)?;
    let ws = Workspace::new(&omni)?;
    let machines =
        rt.block_on(Api::<MachineStatus>::new(c.clone()).list(&ListParams::default()))?;
    let machine = machines
        .first()
        .context("the emulator has no machines")?
        .id()
        .to_string();
    // The whole stack in Terraform: the cluster, its control-plane set and one machine in it.
    let config = |talos: &str, k8s: &str| {
        let cluster = cluster_config(
            "up",
            &format!(
                "  talos_version      = \"{talos}\"\n  kubernetes_version = \"{k8s}\"\n  timeouts = {{\n    update = \"3m\"\n  }}"
            ),
        );
        format!(
            r#"{cluster}
resource "omni_machine_set" "cp" {{
  cluster = omni_cluster.test.name
  role    = "controlplane"
}}

resource "omni_machine_set_node" "cp0" {{
  cluster     = omni_cluster.test.name
  machine_set = omni_machine_set.cp.id
  machine_id  = "{machine}"
}}
"#
        )
    };
    ws.write_config(&config("1.13.8", "1.36.2"))?;
    ws.apply()?;
    let statuses = Api::<ClusterStatus>::new(c.clone());
    eventually(&rt, "the cluster to be ready", || {
        let s = rt.block_on(statuses.get_opt("up"))?;
        Ok(s.filter(|s| s.spec.ready && s.spec.machines.is_some_and(|m| m.healthy == 1)))
    })?;
    let k8s_status = Api::<KubernetesUpgradeStatus>::new(c.clone());
    let talos_status = Api::<TalosUpgradeStatus>::new(c.clone());
    eventually(
        &rt,
        "Talos 1.13.8 and Kubernetes 1.36.2 to be running",
        || {
            let k = rt.block_on(k8s_status.get_opt("up"))?;
            let t = rt.block_on(talos_status.get_opt("up"))?;
            Ok(k.zip(t).filter(|(k, t)| {
                k.spec.last_upgrade_version == "1.36.2"
                    && k.spec.phase() == K8sPhase::Done
                    && t.spec.last_upgrade_version == "1.13.8"
                    && t.spec.phase() == TalosPhase::Done
            }))
        },
    )?;

    // Kubernetes patch upgrade.
    ws.write_config(&config("1.13.8", "v1.36.3"))?;
    let started = Instant::now();
    ws.apply()?;
    println!(
        "Kubernetes 1.36.2 -> 1.36.3 on 1 control plane: apply took {:?}",
        started.elapsed()
    );
    let status = rt.block_on(k8s_status.get("up"))?;
    assert_eq!(status.spec.last_upgrade_version, "1.36.3");
    assert_eq!(status.spec.phase(), K8sPhase::Done);
    let cm = rt.block_on(Api::<ClusterMachine>::new(c.clone()).get(&machine))?;
    assert_eq!(
        cm.spec.kubernetes_version, "1.36.3",
        "the machine runs the new version"
    );
    assert_eq!(
        resource_values(&ws.state()?, ADDR)?["kubernetes_version"],
        "v1.36.3"
    );
    assert!(!ws.plan_has_changes()?);

    // Talos patch upgrade.
    ws.write_config(&config("v1.13.9", "v1.36.3"))?;
    let started = Instant::now();
    ws.apply()?;
    println!(
        "Talos 1.13.8 -> 1.13.9 on 1 control plane: apply took {:?}",
        started.elapsed()
    );
    let status = rt.block_on(talos_status.get("up"))?;
    assert_eq!(status.spec.last_upgrade_version, "1.13.9");
    assert_eq!(status.spec.phase(), TalosPhase::Done);
    let ms = rt.block_on(Api::<MachineStatus>::new(c.clone()).get(&machine))?;
    assert_eq!(
        ms.spec.talos_version.trim_start_matches('v'),
        "1.13.9",
        "the machine runs the new version"
    );
    assert!(!ws.plan_has_changes()?);

    // Skipping a minor on the live cluster is refused at plan time.
    ws.write_config(&config("v1.13.9", "1.38.0"))?;
    let diags = ws.plan_expect_error()?;
    assert!(
        has_diagnostic(
            &diags,
            "one minor version at a time|not compatible",
            Some("kubernetes_version")
        ),
        "{diags:#?}"
    );

    // Destroy removes the whole stack.
    ws.write_config(&config("v1.13.9", "v1.36.3"))?;
    ws.destroy()?;
    assert!(rt
        .block_on(Api::<Cluster>::new(c.clone()).get_opt("up"))?
        .is_none());
    assert!(
        rt.block_on(Api::<MachineSet>::new(c).list(&ListParams::default()))?
            .is_empty(),
        "the machine set is gone"
    );
    Ok(())
}
