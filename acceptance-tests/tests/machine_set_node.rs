//! `omni_machine_set_node` with the real terraform against the emulator: create, import-verify,
//! lock in place, move (replace), empty re-plan, drift, re-create after an out-of-band delete,
//! destroy returning the machines to the pool; plus the table of bad inputs.

use std::time::Duration;

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::{
    has_diagnostic, import_verify, planned_actions, resource_values, Omni, Workspace,
};
use anyhow::{ensure, Context, Result};
use omni_client::resources::{annotations, labels, ClusterMachine, MachineSetNode, MachineStatus};

const SETS: &str = r#"
resource "omni_machine_set" "cp" {
  cluster = "nd"
  role    = "controlplane"
}

resource "omni_machine_set" "w" {
  cluster = "nd"
  role    = "workers"
  name    = "w"
}
"#;

fn node(name: &str, set: &str, machine: &str, locked: Option<bool>) -> String {
    let locked = locked
        .map(|l| format!("  locked      = {l}\n"))
        .unwrap_or_default();
    format!(
        r#"
resource "omni_machine_set_node" "{name}" {{
  cluster     = "nd"
  machine_set = omni_machine_set.{set}.id
  machine_id  = "{machine}"
{locked}}}
"#
    )
}

/// An emulator with `machines` machines; `with_cluster` creates cluster `nd` out of band.
fn setup(machines: u32, with_cluster: bool) -> Result<(Omni, OutOfBand, Workspace, Vec<String>)> {
    let omni = Omni::start(machines)?;
    let ctl = OutOfBand::new(&omni)?;
    if with_cluster {
        ctl.create_cluster("nd")?;
    }
    let pool = ctl.available_machines()?;
    ensure!(pool.len() == machines as usize, "pool: {pool:?}");
    let ws = Workspace::new(&omni)?;
    Ok((omni, ctl, ws, pool))
}

fn in_cluster(ctl: &OutOfBand, machine: &str) -> Result<bool> {
    let m = ctl
        .get::<MachineStatus>(machine)?
        .context("machine exists")?;
    Ok(!m.metadata.labels.contains_key(labels::AVAILABLE))
}

#[test]
fn machine_set_node_lifecycle() -> Result<()> {
    let (omni, ctl, ws, pool) = setup(4, false)?;
    let (m0, m1, m2) = (&pool[0], &pool[1], &pool[2]);
    let (talos, k8s) = ctl.latest_versions()?;

    // Create: cluster `nd` (an omni_cluster), one control-plane node and one worker node.
    let config = |worker: &str, locked: Option<bool>| {
        let body = format!(
            "{SETS}{}{}",
            node("cp0", "cp", m0, None),
            node("w0", "w", worker, locked)
        )
        .replace("= \"nd\"", "= omni_cluster.nd.name");
        format!(
            r#"
resource "omni_cluster" "nd" {{
  name               = "nd"
  talos_version      = "{talos}"
  kubernetes_version = "{k8s}"
}}
{body}"#
        )
    };
    ws.write_config(&config(m1, None))?;
    ws.apply()?;
    let n = ctl
        .get::<MachineSetNode>(m1)?
        .context("worker node created")?;
    ensure!(
        n.metadata
            .labels
            .get(labels::MACHINE_SET)
            .map(String::as_str)
            == Some("nd-w")
    );
    ensure!(n.metadata.labels.contains_key(labels::ROLE_WORKER), "{n:?}");
    ensure!(n.metadata.labels.get(labels::CLUSTER).map(String::as_str) == Some("nd"));
    let n = ctl.get::<MachineSetNode>(m0)?.context("cp node created")?;
    ensure!(
        n.metadata.labels.contains_key(labels::ROLE_CONTROLPLANE),
        "{n:?}"
    );
    let state = ws.state()?;
    let w0 = resource_values(&state, "omni_machine_set_node.w0")?;
    ensure!(
        w0["machine_id"] == m1.as_str() && w0["machine_set"] == "nd-w",
        "{w0}"
    );
    ensure!(!ws.plan_has_changes()?, "re-plan after create is not empty");

    // Import-verify by machine UUID (the set exists, so only the node is in the body).
    let body = format!(
        r#"
resource "omni_machine_set_node" "w0" {{
  cluster     = "nd"
  machine_set = "nd-w"
  machine_id  = "{m1}"
}}
"#
    );
    import_verify(&omni, &body, "omni_machine_set_node.w0", m1, &w0, &[])?;

    // Update in place: lock the worker.
    ws.write_config(&config(m1, Some(true)))?;
    let plan = ws.plan_json()?;
    ensure!(planned_actions(&plan, "omni_machine_set_node.w0") == ["update"]);
    ws.apply()?;
    let n = ctl.get::<MachineSetNode>(m1)?.context("exists")?;
    ensure!(n.metadata.annotations.contains_key(annotations::LOCKED));

    // Out-of-band unlock → drift; apply locks it again.
    ctl.run(ctl.api::<MachineSetNode>().update(m1, |o| {
        o.metadata.annotations.remove(annotations::LOCKED);
    }))?;
    ensure!(ws.plan_has_changes()?, "out-of-band unlock is not drift");
    ws.apply()?;
    ensure!(ctl
        .get::<MachineSetNode>(m1)?
        .context("exists")?
        .metadata
        .annotations
        .contains_key(annotations::LOCKED));

    // A locked machine cannot be moved: the plan says so before anything happens.
    ws.write_config(&config(m2, Some(true)))?;
    let diags = ws.plan_expect_error()?;
    ensure!(
        has_diagnostic(&diags, "Locked machines cannot be removed", Some("locked")),
        "{diags:#?}"
    );

    // Unlock, then move the worker to another machine (replace).
    ws.write_config(&config(m1, Some(false)))?;
    ws.apply()?;
    ws.write_config(&config(m2, Some(false)))?;
    let plan = ws.plan_json()?;
    let actions = planned_actions(&plan, "omni_machine_set_node.w0");
    ensure!(
        actions.contains(&"delete".to_string()) && actions.contains(&"create".to_string()),
        "{actions:?}"
    );
    ws.apply()?;
    ensure!(ctl.get::<MachineSetNode>(m1)?.is_none());
    ensure!(ctl.get::<MachineSetNode>(m2)?.is_some());
    ensure!(!ws.plan_has_changes()?);

    // Out-of-band delete → planned for creation, and created again.
    ctl.delete::<MachineSetNode>(m2)?;
    let plan = ws.plan_json()?;
    ensure!(planned_actions(&plan, "omni_machine_set_node.w0") == ["create"]);
    ws.apply()?;
    ensure!(ctl.get::<MachineSetNode>(m2)?.is_some());

    // The machines really joined the cluster.
    ensure!(in_cluster(&ctl, m0)? && in_cluster(&ctl, m2)?);

    // Destroy: no node, no cluster machine left; every machine is back in the pool.
    ws.destroy()?;
    ensure!(ctl.get::<omni_client::resources::Cluster>("nd")?.is_none());
    ensure!(ctl.of_cluster::<MachineSetNode>("nd")?.is_empty());
    ensure!(ctl.of_cluster::<ClusterMachine>("nd")?.is_empty());
    ctl.wait_all_available(Duration::from_secs(60))?;
    Ok(())
}

#[test]
fn machine_set_node_bad_inputs() -> Result<()> {
    let (_omni, ctl, ws, pool) = setup(2, true)?;
    let m0 = &pool[0];
    // A class-allocated set made outside this configuration rejects hand-assigned nodes.
    ctl.create_machine_class("pool", &["omni.sidero.dev/arch=amd64"])?;
    let auto = omni_client::Object::<omni_client::resources::MachineSet>::new(
        "nd-auto",
        omni_client::omni_api::specs::MachineSetSpec {
            machine_allocation: Some(
                omni_client::omni_api::specs::machine_set_spec::MachineAllocation {
                    name: "pool".into(),
                    machine_count: 0,
                    allocation_type: 0,
                },
            ),
            ..Default::default()
        },
    )
    .with_label(labels::CLUSTER, "nd")
    .with_label(labels::ROLE_WORKER, "");
    ctl.run(ctl.api::<omni_client::resources::MachineSet>().create(auto))?;

    let cases: Vec<(String, &str, &str)> = vec![
        (
            r#"machine_set = "nd-w"
  machine_id  = "not-a-uuid""#
                .to_string(),
            "Invalid machine ID",
            "machine_id",
        ),
        (
            format!(
                r#"machine_set = "w"
  machine_id  = "{m0}""#
            ),
            "Machine set of another cluster",
            "machine_set",
        ),
        (
            format!(
                r#"machine_set = "nd-control-planes"
  machine_id  = "{m0}"
  locked      = true"#
            ),
            "Control planes cannot be locked",
            "locked",
        ),
        (
            format!(
                r#"machine_set = "nd-auto"
  machine_id  = "{m0}""#
            ),
            "allocates from a machine class",
            "machine_set",
        ),
    ];
    for (body, pattern, attribute) in &cases {
        ws.write_config(&format!(
            "resource \"omni_machine_set_node\" \"bad\" {{\n  cluster     = \"nd\"\n  {body}\n}}\n"
        ))?;
        let diags = ws.plan_expect_error()?;
        ensure!(
            has_diagnostic(&diags, pattern, Some(attribute)),
            "expected {pattern:?} at {attribute} for\n{body}\ngot {diags:#?}"
        );
    }
    Ok(())
}
