//! `omni_machine_set` with the real terraform against the emulator: create (waiting for
//! ready), import-verify, update in place, replace, empty re-plan, drift, re-create after an
//! out-of-band delete, destroy returning every machine; plus the table of bad inputs.

use std::time::Duration;

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::{
    has_diagnostic, import_verify, planned_actions, resource_values, Omni, Workspace,
};
use anyhow::{ensure, Result};
use omni_client::omni_api::specs::{self, machine_set_spec::UpdateStrategy, MachineSetPhase};
use omni_client::resources::{MachineSet, MachineSetStatus};

const MACHINES: u32 = 6;

const CP: &str = r#"
resource "omni_machine_set" "cp" {
  cluster = "ms"
  role    = "controlplane"
  machine_class = {
    name = "pool"
    size = 1
  }
}
"#;

/// The default worker set from machine class `pool`. `official` spells the enums the official
/// provider's way (`Static`, `Rolling`), which is accepted and kept as written.
fn workers(size: u32, max_parallelism: u32, official: bool) -> String {
    let (alloc, rolling) = if official {
        ("Static", "Rolling")
    } else {
        ("static", "rolling")
    };
    format!(
        r#"
resource "omni_machine_set" "workers" {{
  cluster = "ms"
  role    = "workers"
  machine_class = {{
    name            = "pool"
    size            = {size}
    allocation_type = "{alloc}"
  }}
  update_strategy = {{
    type            = "{rolling}"
    max_parallelism = {max_parallelism}
  }}
  labels = {{
    team = "platform"
  }}
}}
"#
    )
}

/// A named worker set whose machines would be assigned by hand.
fn gpu(name: &str) -> String {
    format!(
        r#"
resource "omni_machine_set" "gpu" {{
  cluster = "ms"
  role    = "workers"
  name    = "{name}"
  delete_strategy = {{
    type = "rolling"
  }}
}}
"#
    )
}

/// Cluster `ms` (an `omni_cluster`) with three sets: control plane, default workers and a
/// named worker set.
fn config(
    versions: &(String, String),
    size: u32,
    gpu_name: &str,
    mp: u32,
    official: bool,
) -> String {
    let (talos, k8s) = versions;
    let sets = format!("{CP}{}{}", workers(size, mp, official), gpu(gpu_name))
        .replace("cluster = \"ms\"", "cluster = omni_cluster.ms.name");
    format!(
        r#"
resource "omni_cluster" "ms" {{
  name               = "ms"
  talos_version      = "{talos}"
  kubernetes_version = "{k8s}"
}}
{sets}"#
    )
}

/// An emulator with machine class `pool` (every machine); `with_cluster` also creates cluster
/// `ms` out of band.
fn setup(with_cluster: bool) -> Result<(Omni, OutOfBand, Workspace)> {
    let omni = Omni::start(MACHINES)?;
    let ctl = OutOfBand::new(&omni)?;
    if with_cluster {
        ctl.create_cluster("ms")?;
    }
    ctl.create_machine_class("pool", &["omni.sidero.dev/arch=amd64"])?;
    let ws = Workspace::new(&omni)?;
    Ok((omni, ctl, ws))
}

fn status(ctl: &OutOfBand, id: &str) -> Result<specs::MachineSetStatusSpec> {
    Ok(ctl
        .get::<MachineSetStatus>(id)?
        .map(|s| s.spec)
        .unwrap_or_default())
}

#[test]
fn machine_set_lifecycle() -> Result<()> {
    let (omni, ctl, ws) = setup(false)?;
    let v = ctl.latest_versions()?;

    // Create: apply returns only once the class-allocated sets are Running and ready.
    ws.write_config(&config(&v, 1, "gpu", 2, false))?;
    ws.apply()?;
    for id in ["ms-control-planes", "ms-workers"] {
        let s = status(&ctl, id)?;
        ensure!(
            s.phase == MachineSetPhase::Running as i32 && s.ready,
            "{id} not ready after apply: {s:?}"
        );
        ensure!(s.machines.unwrap_or_default().total == 1, "{id}: {s:?}");
    }
    let state = ws.state()?;
    let cp = resource_values(&state, "omni_machine_set.cp")?;
    ensure!(
        cp["id"] == "ms-control-planes" && cp["name"].is_null(),
        "{cp}"
    );
    let w = resource_values(&state, "omni_machine_set.workers")?;
    ensure!(w["id"] == "ms-workers" && w["name"].is_null(), "{w}");
    // Defaults are shown in state.
    ensure!(w["machine_class"]["allocation_type"] == "static", "{w}");
    ensure!(w["delete_strategy"]["type"] == "unset", "{w}");
    ensure!(w["wait"] == true, "{w}");
    let g = resource_values(&state, "omni_machine_set.gpu")?;
    ensure!(g["id"] == "ms-gpu" && g["name"] == "gpu", "{g}");
    let set = ctl.get::<MachineSet>("ms-workers")?.expect("created");
    ensure!(set.metadata.labels.get("team").map(String::as_str) == Some("platform"));
    ensure!(set
        .metadata
        .labels
        .contains_key("omni.sidero.dev/role-worker"));
    ensure!(
        set.metadata
            .labels
            .get("omni.sidero.dev/cluster")
            .map(String::as_str)
            == Some("ms")
    );
    ensure!(
        set.metadata
            .annotations
            .get("omni.sidero.dev/managed-by-gitops-tools")
            .map(String::as_str)
            == Some("Terraform")
    );

    // Empty re-plan: the short name round-trips (the official provider's perpetual diff).
    ensure!(!ws.plan_has_changes()?, "re-plan after create is not empty");

    // Import-verify each set into a fresh workspace: same attributes, empty plan. After an
    // import the default set's name reads back as `workers` (which also matches a configured
    // `name = "workers"`); the created one kept the omitted name.
    for (body, addr, id, ignore) in [
        (
            CP.to_string(),
            "omni_machine_set.cp",
            "ms-control-planes",
            &[][..],
        ),
        (
            workers(1, 2, false),
            "omni_machine_set.workers",
            "ms-workers",
            &["name"][..],
        ),
        (gpu("gpu"), "omni_machine_set.gpu", "ms-gpu", &[][..]),
    ] {
        let created = resource_values(&state, addr)?;
        import_verify(&omni, &body, addr, id, &created, ignore)?;
    }

    // The cluster is bootstrapped now: a change that would replace its control-plane set is
    // refused at plan time (Omni would tear the control plane down, then reject the new set).
    let with_bootstrap = config(&v, 1, "gpu", 2, false).replace(
        "    size = 1\n  }\n}",
        "    size = 1\n  }\n  bootstrap_spec = {\n    cluster_uuid = \"5d6f4c7e-1f0c-4b1e-9a55-3f1d2d0f6a11\"\n    snapshot     = \"snap\"\n  }\n}",
    );
    ensure!(
        with_bootstrap.contains("bootstrap_spec"),
        "{with_bootstrap}"
    );
    ws.write_config(&with_bootstrap)?;
    let diags = ws.plan_expect_error()?;
    ensure!(
        has_diagnostic(
            &diags,
            "Cannot replace the control plane of a bootstrapped cluster",
            Some("role")
        ),
        "{diags:#?}"
    );

    // Update in place: scale the workers and change the strategy; apply waits for 2 machines.
    // The official provider's spelling (`Static`, `Rolling`) is accepted and kept as written.
    ws.write_config(&config(&v, 2, "gpu", 3, true))?;
    let plan = ws.plan_json()?;
    ensure!(planned_actions(&plan, "omni_machine_set.workers") == ["update"]);
    ws.apply()?;
    let w = resource_values(&ws.state()?, "omni_machine_set.workers")?;
    ensure!(w["update_strategy"]["type"] == "Rolling", "{w}");
    ensure!(!ws.plan_has_changes()?, "the user's spelling is not kept");
    let s = status(&ctl, "ms-workers")?;
    ensure!(
        s.ready && s.machines.unwrap_or_default().total == 2,
        "workers not scaled to 2 when apply returned: {s:?}"
    );
    let spec = ctl.get::<MachineSet>("ms-workers")?.expect("exists").spec;
    ensure!(
        spec.update_strategy_config
            .and_then(|c| c.rolling)
            .map(|r| r.max_parallelism)
            == Some(3)
    );

    // Replace: renaming a worker set changes its ID.
    ws.write_config(&config(&v, 2, "gpu2", 3, true))?;
    let plan = ws.plan_json()?;
    let actions = planned_actions(&plan, "omni_machine_set.gpu");
    ensure!(
        actions.contains(&"delete".to_string()) && actions.contains(&"create".to_string()),
        "{actions:?}"
    );
    ws.apply()?;
    ensure!(ctl.get::<MachineSet>("ms-gpu")?.is_none());
    ensure!(ctl.get::<MachineSet>("ms-gpu2")?.is_some());
    ensure!(!ws.plan_has_changes()?);

    // Out-of-band change → drift, and apply puts it back.
    ctl.run(ctl.api::<MachineSet>().update("ms-workers", |o| {
        o.spec.update_strategy = UpdateStrategy::Unset as i32;
        o.metadata
            .labels
            .insert("team".into(), "someone-else".into());
    }))?;
    ensure!(ws.plan_has_changes()?, "out-of-band change is not drift");
    ws.apply()?;
    let set = ctl.get::<MachineSet>("ms-workers")?.expect("exists");
    ensure!(set.spec.update_strategy == UpdateStrategy::Rolling as i32);
    ensure!(set.metadata.labels.get("team").map(String::as_str) == Some("platform"));
    ensure!(!ws.plan_has_changes()?);

    // Out-of-band delete → planned for creation, and created again.
    ctl.delete::<MachineSet>("ms-gpu2")?;
    let plan = ws.plan_json()?;
    ensure!(planned_actions(&plan, "omni_machine_set.gpu") == ["create"]);
    ws.apply()?;
    ensure!(ctl.get::<MachineSet>("ms-gpu2")?.is_some());

    // Destroy: nothing of ours is left and every machine is back in the pool.
    ws.destroy()?;
    ensure!(ctl.get::<omni_client::resources::Cluster>("ms")?.is_none());
    ensure!(
        ctl.of_cluster::<MachineSet>("ms")?.is_empty(),
        "machine sets left after destroy"
    );
    ctl.wait_all_available(Duration::from_secs(60))?;
    Ok(())
}

/// The diagnostic matching `pattern` points at `attribute`: Terraform's snippet for top-level
/// attributes and map keys; for a field of an object attribute (which Terraform cannot
/// highlight) the provider names the field in the detail.
fn names_attribute(diags: &[serde_json::Value], pattern: &str, attribute: &str) -> bool {
    if attribute.starts_with("machine_class.") || attribute.starts_with("bootstrap_spec.") {
        let field = format!("`{attribute}`");
        return has_diagnostic(diags, pattern, None)
            && diags
                .iter()
                .any(|d| d["detail"].as_str().unwrap_or("").contains(&field));
    }
    has_diagnostic(diags, pattern, Some(attribute))
}

#[test]
fn machine_set_bad_inputs() -> Result<()> {
    let (_omni, ctl, ws) = setup(true)?;
    // An existing control-plane set made outside this configuration.
    let cp = omni_client::Object::<MachineSet>::new(
        "ms-control-planes",
        specs::MachineSetSpec::default(),
    )
    .with_label("omni.sidero.dev/cluster", "ms")
    .with_label("omni.sidero.dev/role-controlplane", "");
    ctl.run(ctl.api::<MachineSet>().create(cp))?;

    let cases: &[(&str, &str, &str)] = &[
        (
            r#"cluster = "ms"
  role = "workers"
  labels = {
    "omni.sidero.dev/x" = "y"
  }"#,
            "Invalid labels entry",
            "omni.sidero.dev/x",
        ),
        (
            r#"cluster = "ms"
  role = "leaders""#,
            "Invalid role",
            "role",
        ),
        (
            r#"cluster = "ms"
  role = "controlplane"
  name = "main""#,
            "name is not allowed for control planes",
            "name",
        ),
        (
            r#"cluster = "ms"
  role = "workers"
  machine_class = {
    name            = "pool"
    allocation_type = "unlimited"
    size            = 2
  }"#,
            "size is only allowed with static allocation",
            "machine_class.size",
        ),
        (
            r#"cluster = "ms"
  role = "controlplane""#,
            "already has a control-plane machine set",
            "role",
        ),
        (
            r#"cluster = "ms"
  role = "workers"
  name = "control-planes""#,
            "Invalid name",
            "name",
        ),
        (
            r#"cluster = "ms"
  role = "workers"
  bootstrap_spec = {
    cluster_uuid = "5d6f4c7e-1f0c-4b1e-9a55-3f1d2d0f6a11"
    snapshot     = "snap"
  }"#,
            "only for control planes",
            "bootstrap_spec",
        ),
    ];
    for (body, pattern, attribute) in cases {
        ws.write_config(&format!(
            "resource \"omni_machine_set\" \"bad\" {{\n  {body}\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        ensure!(
            names_attribute(&diags, pattern, attribute),
            "expected {pattern:?} at {attribute} for\n{body}\ngot {diags:#?}"
        );
    }
    Ok(())
}
